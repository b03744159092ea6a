"""Shipped topologies modelled on public benchmark systems, and a large-graph generator.

* ``sockshop``: Weaveworks Sock Shop (namespace ``sock-shop``; MongoDB/MySQL stores,
  RabbitMQ ``shipping-task`` consumed by queue-master).
* ``boutique``: Google's Online Boutique (gRPC between services; Redis cart; the
  frontend tolerates ad/recommendation failures and checkout tolerates email failures,
  as the real code does).
* ``trainticket``: a 32-service subset of FudanSE Train-Ticket (shared MySQL ``ts``
  schema, per-service MongoDB, RabbitMQ notifications, the real travel↔seat cycle,
  retried security/payment calls, optional assurance/food/consign with fallbacks).
* ``generated-<n>[-<seed>]``: :func:`generate`.
* ``tiny``: seven services exercising every feature with no background errors, so
  unit tests can assert exact outcomes (the fake next to the interface).

The shapes (who calls whom, which store) follow the public code of those systems; the
latencies and probabilities are plausible values, not measurements.
"""

from __future__ import annotations

import functools
import math
import random
import re
from dataclasses import replace

from .topology import Backend, BackendKind, Call, Entry, Operation, Service, Topology

__all__ = ["NAMES", "boutique", "boutique_day", "generate", "get", "sockshop", "tiny", "trainticket"]

DB, Q, EXT = BackendKind.DATABASE, BackendKind.QUEUE, BackendKind.EXTERNAL
NAMES = ("sockshop", "boutique", "boutique-day", "trainticket", "tiny")


def _op(name: str, ms: float = 4.0, *calls: Call, err: float = 0.001) -> Operation:
    return Operation(name=name, latency_ms=ms, error_rate=err, calls=tuple(calls))


def _place(services: list[Service], nodes: list[str]) -> list[Service]:
    """Round-robin services onto nodes (``host.name`` = ``k8s.node.name``, as on k8s)."""
    out = []
    for i, s in enumerate(services):
        node = nodes[i % len(nodes)]
        out.append(Service(s.name, s.operations, s.namespace, s.version, node, node, s.pod, s.protocol))
    return out


# -- Sock Shop -------------------------------------------------------------------------
def sockshop() -> Topology:
    ns = "sock-shop"

    def s(name: str) -> str:
        return f"{ns}/{name}"

    C = Call
    services = [
        Service("front-end", (
            _op("GET /", 3, C(s("catalogue"), "GET /catalogue", parallel=True),
                C(s("user"), "GET /customers/{id}", parallel=True, fallback=True),
                C(s("carts"), "GET /carts/{id}/items", parallel=True, fallback=True)),
            _op("GET /catalogue", 2, C(s("catalogue"), "GET /catalogue")),
            _op("GET /detail", 2, C(s("catalogue"), "GET /catalogue/{id}")),
            _op("GET /basket", 2, C(s("carts"), "GET /carts/{id}/items"),
                C(s("catalogue"), "GET /catalogue/{id}", fanout=2)),
            _op("POST /cart", 2, C(s("catalogue"), "GET /catalogue/{id}"),
                C(s("carts"), "POST /carts/{id}/items")),
            _op("GET /login", 2, C(s("user"), "GET /login")),
            _op("POST /orders", 3, C(s("orders"), "POST /orders")),
        ), ns, "0.4.8"),
        Service("catalogue", (
            _op("GET /catalogue", 3, C("catalogue-db", "SELECT")),
            _op("GET /catalogue/{id}", 2, C("catalogue-db", "SELECT")),
        ), ns, "0.3.5"),
        Service("carts", (
            _op("GET /carts/{id}/items", 4, C("carts-db", "find")),
            _op("POST /carts/{id}/items", 4, C("carts-db", "find"), C("carts-db", "update")),
            _op("DELETE /carts/{id}", 3, C("carts-db", "delete")),
        ), ns, "0.4.8"),
        Service("user", (
            _op("GET /customers/{id}", 3, C("user-db", "find")),
            _op("GET /login", 5, C("user-db", "find")),
            _op("GET /addresses/{id}", 2, C("user-db", "find")),
            _op("GET /cards/{id}", 2, C("user-db", "find")),
        ), ns, "0.4.7"),
        Service("orders", (
            _op("POST /orders", 8,
                C(s("user"), "GET /customers/{id}", parallel=True),
                C(s("user"), "GET /addresses/{id}", parallel=True),
                C(s("user"), "GET /cards/{id}", parallel=True),
                C(s("carts"), "GET /carts/{id}/items"),
                C(s("payment"), "POST /paymentAuth", retry=True),
                C(s("shipping"), "POST /shipping"),
                C("orders-db", "insert"),
                C(s("carts"), "DELETE /carts/{id}")),
        ), ns, "0.4.7"),
        Service("payment", (_op("POST /paymentAuth", 3),), ns, "0.4.3"),
        Service("shipping", (_op("POST /shipping", 3, C("shipping-task", "publish")),), ns, "0.4.8"),
        Service("queue-master", (_op("consume shipping-task", 15),), ns, "0.3.1"),
    ]
    backends = [
        Backend("catalogue-db", DB, "mysql", "socksdb", "catalogue-db", 3306, 1.5),
        Backend("carts-db", DB, "mongodb", "carts", "carts-db", 27017, 2.0),
        Backend("user-db", DB, "mongodb", "users", "user-db", 27017, 1.5),
        Backend("orders-db", DB, "mongodb", "orders", "orders-db", 27017, 2.5),
        Backend("shipping-task", Q, "rabbitmq", "shipping-task", "rabbitmq", 5672, 1.0,
                consumers=((s("queue-master"), "consume shipping-task"),)),
    ]
    entries = [Entry(s("front-end"), op, w) for op, w in (
        ("GET /", 3), ("GET /catalogue", 3), ("GET /detail", 3), ("GET /basket", 2),
        ("POST /cart", 2), ("GET /login", 1), ("POST /orders", 1.5))]
    return Topology.of("sockshop", _place(services, ["node-1", "node-2", "node-3"]), backends, entries)


# -- Online Boutique ---------------------------------------------------------------------
def boutique() -> Topology:
    C = Call
    hs = "hipstershop."

    def g(svc: str, method: str) -> str:
        return f"{hs}{svc}/{method}"

    def grpc(name: str, version: str, *ops: Operation) -> Service:
        return Service(name, ops, "", version, protocol="grpc")

    services = [
        Service("frontend", (
            _op("GET /", 3, C("currencyservice", g("CurrencyService", "GetSupportedCurrencies")),
                C("productcatalogservice", g("ProductCatalogService", "ListProducts")),
                C("cartservice", g("CartService", "GetCart")),
                C("currencyservice", g("CurrencyService", "Convert"), fanout=3),
                C("adservice", g("AdService", "GetAds"), fallback=True)),
            _op("GET /product/{id}", 3,
                C("productcatalogservice", g("ProductCatalogService", "GetProduct")),
                C("currencyservice", g("CurrencyService", "GetSupportedCurrencies")),
                C("cartservice", g("CartService", "GetCart")),
                C("recommendationservice", g("RecommendationService", "ListRecommendations"),
                  fallback=True),
                C("adservice", g("AdService", "GetAds"), fallback=True)),
            _op("POST /cart", 2, C("productcatalogservice", g("ProductCatalogService", "GetProduct")),
                C("cartservice", g("CartService", "AddItem"))),
            _op("GET /cart", 3, C("cartservice", g("CartService", "GetCart")),
                C("recommendationservice", g("RecommendationService", "ListRecommendations"),
                  fallback=True),
                C("shippingservice", g("ShippingService", "GetQuote")),
                C("currencyservice", g("CurrencyService", "Convert"), fanout=2)),
            _op("POST /cart/checkout", 3, C("checkoutservice", g("CheckoutService", "PlaceOrder"))),
        ), "", "v0.10.1"),
        grpc("checkoutservice", "v0.10.1", _op(g("CheckoutService", "PlaceOrder"), 4,
             C("cartservice", g("CartService", "GetCart")),
             C("productcatalogservice", g("ProductCatalogService", "GetProduct"), fanout=2),
             C("currencyservice", g("CurrencyService", "Convert"), fanout=2),
             C("shippingservice", g("ShippingService", "GetQuote")),
             C("paymentservice", g("PaymentService", "Charge")),
             C("shippingservice", g("ShippingService", "ShipOrder")),
             C("cartservice", g("CartService", "EmptyCart")),
             C("emailservice", g("EmailService", "SendOrderConfirmation"), fallback=True))),
        grpc("cartservice", "v0.10.1",
             _op(g("CartService", "GetCart"), 2, C("redis-cart", "HGET")),
             _op(g("CartService", "AddItem"), 2, C("redis-cart", "HGET"), C("redis-cart", "HSET")),
             _op(g("CartService", "EmptyCart"), 2, C("redis-cart", "DEL"))),
        grpc("productcatalogservice", "v0.10.1",
             _op(g("ProductCatalogService", "ListProducts"), 3),
             _op(g("ProductCatalogService", "GetProduct"), 1.5)),
        grpc("currencyservice", "v0.10.1",
             _op(g("CurrencyService", "GetSupportedCurrencies"), 1.5),
             _op(g("CurrencyService", "Convert"), 1.0)),
        grpc("recommendationservice", "v0.10.1",
             _op(g("RecommendationService", "ListRecommendations"), 5,
                 C("productcatalogservice", g("ProductCatalogService", "ListProducts")))),
        grpc("shippingservice", "v0.10.1",
             _op(g("ShippingService", "GetQuote"), 1.5), _op(g("ShippingService", "ShipOrder"), 2)),
        grpc("paymentservice", "v0.10.1",
             _op(g("PaymentService", "Charge"), 3, C("stripe", "POST /v1/charges", retry=True))),
        grpc("emailservice", "v0.10.1", _op(g("EmailService", "SendOrderConfirmation"), 6)),
        grpc("adservice", "v0.10.1", _op(g("AdService", "GetAds"), 3)),
    ]
    backends = [
        Backend("redis-cart", DB, "redis", "cart", "redis-cart", 6379, 0.8),
        Backend("stripe", EXT, address="api.stripe.com", port=443, latency_ms=40.0),
    ]
    entries = [Entry("frontend", op, w) for op, w in (
        ("GET /", 4), ("GET /product/{id}", 4), ("POST /cart", 1.5), ("GET /cart", 1.5),
        ("POST /cart/checkout", 1))]
    nodes = ["gke-pool-a-1", "gke-pool-a-2", "gke-pool-a-3"]
    return Topology.of("boutique", _place(services, nodes), backends, entries)


def boutique_day() -> Topology:
    """Online Boutique as it runs through a day (the healthy day, ``suite.healthy_day``).

    The same services and calls, plus the two kinds a real estate has that the incident
    topologies lack:

    * **naturally noisy** services: ``recommendationservice`` and ``adservice`` fail 5 %
      and 3 % of their calls when healthy (both behind a fallback, so nobody upstream
      notices) with heavy-tailed self time (lognormal sigma 0.9 / 0.8, vs 0.35 elsewhere);
      the external ``stripe`` fails 2 % of charges (retried) with sigma 0.7. The minute to
      minute wander of the first two is ``ScenarioSpec.noise``;
    * **low-traffic** services: ``reportservice`` (an internal dashboard: ~3 calls a
      minute at peak, reading the catalogue and its own Postgres) and ``webhookservice``
      (payment provider callbacks, ~2 a minute at peak, writing a ledger database), each
      failing 1 % of calls -- one error in a minute of three calls is a 33 % error rate.
    """
    base = boutique()
    noisy = {"recommendationservice": (0.05, 0.9), "adservice": (0.03, 0.8)}
    services = []
    for svc in base.services.values():
        if svc.id in noisy:
            err, sigma = noisy[svc.id]
            svc = replace(svc, operations=tuple(replace(op, error_rate=err, sigma=sigma) for op in svc.operations))
        services.append(svc)
    services += [
        Service("reportservice", (
            Operation("GET /reports/daily", 20.0, 0.5, 0.01, (
                Call("productcatalogservice", "hipstershop.ProductCatalogService/ListProducts"),
                Call("reports-db", "SELECT"))),), "", "v1.4.0", host="gke-pool-a-1", node="gke-pool-a-1"),
        Service("webhookservice", (
            Operation("POST /webhooks/payment", 8.0, 0.5, 0.01, (Call("ledger-db", "INSERT"),)),),
            "", "v2.1.0", host="gke-pool-a-3", node="gke-pool-a-3"),
    ]
    backends = [replace(b, error_rate=0.02, sigma=0.7) if b.key == "stripe" else b for b in base.backends.values()]
    backends += [Backend("reports-db", DB, "postgresql", "reports", "reports-db", 5432, 6.0),
                 Backend("ledger-db", DB, "postgresql", "ledger", "ledger-db", 5432, 3.0)]
    # boutique's entry weights sum to 12 (~120 requests a minute at a 2 rps peak):
    # 0.3 and 0.2 of that are ~3 and ~2 calls a minute.
    entries = [*base.entries, Entry("reportservice", "GET /reports/daily", 0.3),
               Entry("webhookservice", "POST /webhooks/payment", 0.2)]
    return Topology.of("boutique-day", services, backends, entries)


# -- Train-Ticket (subset) ---------------------------------------------------------------
def trainticket() -> Topology:
    C = Call
    api = "/api/v1/"
    TRIPS = f"POST {api}travelservice/trips/left"
    ROUTES = f"GET {api}travelservice/routes/{{tripId}}"
    TRIP = f"GET {api}travelservice/trips/{{tripId}}"
    LEFT = f"POST {api}seatservice/seats/left_tickets"
    SEATS = f"POST {api}seatservice/seats"
    TINFO = f"POST {api}ticketinfoservice/ticketinfo"
    BASIC = f"POST {api}basicservice/basic/travel"
    ORDER_GET = f"GET {api}orderservice/order/{{id}}"
    ORDER_TICKETS = f"POST {api}orderservice/order/tickets"
    ORDER_STATUS = f"PUT {api}orderservice/order/status"
    ORDER_SEC = f"GET {api}orderservice/order/security/{{date}}/{{id}}"

    def sql(op: str = "SELECT", db: str = "mysql-ts") -> Call:
        return C(db, op)

    def svc(name: str, *ops: Operation) -> Service:
        return Service(f"ts-{name}-service", ops, "", "1.0.0")

    def travel(name: str, prefix: str) -> Service:
        return svc(name,
                   _op(f"POST {api}{prefix}/trips/left", 6, sql(),
                       C("ts-ticketinfo-service", TINFO, fanout=2),
                       C("ts-seat-service", LEFT, fanout=2, parallel=True),
                       C("ts-train-service", f"GET {api}trainservice/trains/{{id}}", parallel=True)),
                   _op(f"GET {api}{prefix}/routes/{{tripId}}", 2, sql(),
                       C("ts-route-service", f"GET {api}routeservice/routes/{{id}}")),
                   _op(f"GET {api}{prefix}/trips/{{tripId}}", 2, sql()))

    def simple(name: str, path: str, store: str, op: str = "SELECT", ms: float = 2.0) -> Service:
        return svc(name, _op(f"GET {api}{path}", ms, C(store, op)))

    services = [
        Service("ts-ui-dashboard", (
            _op(TRIPS, 1, C("ts-travel-service", TRIPS)),
            _op(f"POST {api}travel2service/trips/left", 1,
                C("ts-travel2-service", f"POST {api}travel2service/trips/left")),
            _op(f"POST {api}preserveservice/preserve", 1,
                C("ts-preserve-service", f"POST {api}preserveservice/preserve")),
            _op(f"POST {api}users/login", 1, C("ts-auth-service", f"POST {api}users/login")),
            _op(f"POST {api}orderservice/order/refresh", 1,
                C("ts-order-service", f"POST {api}orderservice/order/refresh")),
            _op(f"POST {api}inside_pay_service/inside_payment", 1,
                C("ts-inside-payment-service", f"POST {api}inside_pay_service/inside_payment")),
            _op(f"GET {api}cancelservice/cancel/{{orderId}}", 1,
                C("ts-cancel-service", f"GET {api}cancelservice/cancel/{{orderId}}")),
            _op(f"POST {api}travelplanservice/travelPlan/cheapest", 1,
                C("ts-travel-plan-service", f"POST {api}travelplanservice/travelPlan/cheapest")),
            _op(f"GET {api}foodservice/foods", 1, C("ts-food-service", f"GET {api}foodservice/foods")),
            _op(f"POST {api}executeservice/execute/collected", 1,
                C("ts-execute-service", f"POST {api}executeservice/execute/collected")),
        ), "", "1.0.0"),
        svc("auth", _op(f"POST {api}users/login", 8,
                        C("ts-verification-code-service", f"GET {api}verifycode/verify/{{code}}"),
                        C("mongo-auth", "find"))),
        svc("verification-code", _op(f"GET {api}verifycode/verify/{{code}}", 1)),
        travel("travel", "travelservice"),
        travel("travel2", "travel2service"),
        svc("ticketinfo", _op(TINFO, 1, C("ts-basic-service", BASIC))),
        svc("basic", _op(BASIC, 2,
                         C("ts-station-service", f"GET {api}stationservice/stations/id/{{name}}", fanout=2),
                         C("ts-route-service", f"GET {api}routeservice/routes/{{id}}"),
                         C("ts-price-service", f"GET {api}priceservice/prices/{{routeId}}"))),
        simple("station", "stationservice/stations/id/{name}", "mysql-ts", ms=1.0),
        simple("train", "trainservice/trains/{id}", "mysql-ts", ms=1.0),
        simple("route", "routeservice/routes/{id}", "mysql-ts", ms=1.5),
        simple("price", "priceservice/prices/{routeId}", "mysql-ts", ms=1.0),
        simple("config", "configservice/configs/{name}", "mysql-ts", ms=1.0),
        # The real Train-Ticket cycle: travel -> seat -> travel (routes).
        svc("seat",
            _op(LEFT, 3, C("ts-travel-service", ROUTES), C("ts-order-service", ORDER_TICKETS),
                C("ts-config-service", f"GET {api}configservice/configs/{{name}}")),
            _op(SEATS, 3, C("ts-travel-service", ROUTES), C("ts-order-service", ORDER_TICKETS))),
        svc("order",
            _op(ORDER_TICKETS, 3, sql(db="mysql-order")),
            _op(f"POST {api}orderservice/order/refresh", 4, sql(db="mysql-order"),
                C("ts-station-service", f"GET {api}stationservice/stations/id/{{name}}", fanout=2)),
            _op(f"POST {api}orderservice/order", 4, sql("INSERT", "mysql-order")),
            _op(ORDER_GET, 2, sql(db="mysql-order")),
            _op(ORDER_STATUS, 2, sql("UPDATE", "mysql-order")),
            _op(ORDER_SEC, 2, sql(db="mysql-order"))),
        svc("order-other", _op(ORDER_SEC, 2, sql(db="mysql-order-other"))),
        svc("preserve", _op(f"POST {api}preserveservice/preserve", 6,
                            C("ts-security-service", f"GET {api}securityservice/securityConfigs/{{id}}",
                              retry=True),
                            C("ts-contacts-service", f"GET {api}contactservice/contacts/{{id}}"),
                            C("ts-travel-service", TRIP),
                            C("ts-ticketinfo-service", TINFO),
                            C("ts-seat-service", SEATS),
                            C("ts-order-service", f"POST {api}orderservice/order"),
                            C("ts-assurance-service", f"POST {api}assuranceservice/assurances",
                              probability=0.5, fallback=True),
                            C("ts-food-service", f"POST {api}foodservice/orders",
                              probability=0.4, fallback=True),
                            C("ts-consign-service", f"POST {api}consignservice/consigns",
                              probability=0.3, fallback=True),
                            C("ts-user-service", f"GET {api}userservice/users/id/{{id}}"),
                            C("rabbit-email", "publish"))),
        svc("security", _op(f"GET {api}securityservice/securityConfigs/{{id}}", 2,
                            C("ts-order-service", ORDER_SEC, parallel=True),
                            C("ts-order-other-service", ORDER_SEC, parallel=True),
                            C("mongo-security", "find"))),
        simple("contacts", "contactservice/contacts/{id}", "mongo-contacts", "find"),
        svc("assurance", _op(f"POST {api}assuranceservice/assurances", 2, C("mongo-assurance", "insert"))),
        svc("food",
            _op(f"POST {api}foodservice/orders", 2, C("mongo-food", "insert")),
            _op(f"GET {api}foodservice/foods", 3,
                C("ts-station-food-service", f"GET {api}stationfoodservice/stationfoodstores", parallel=True),
                C("ts-train-food-service", f"GET {api}trainfoodservice/trainfoods", parallel=True),
                C("ts-travel-service", ROUTES))),
        simple("station-food", "stationfoodservice/stationfoodstores", "mongo-food", "find"),
        simple("train-food", "trainfoodservice/trainfoods", "mongo-food", "find"),
        svc("consign", _op(f"POST {api}consignservice/consigns", 2,
                           C("ts-consign-price-service", f"GET {api}consignpriceservice/price"),
                           C("mongo-consign", "insert"))),
        simple("consign-price", "consignpriceservice/price", "mongo-consign", "find"),
        simple("user", "userservice/users/id/{id}", "mongo-user", "find"),
        svc("inside-payment",
            _op(f"POST {api}inside_pay_service/inside_payment", 4, C("ts-order-service", ORDER_GET),
                C("ts-payment-service", f"POST {api}paymentservice/payment", retry=True),
                C("ts-order-service", ORDER_STATUS), C("mongo-inside-payment", "insert")),
            _op(f"POST {api}inside_pay_service/drawback", 3, C("mongo-inside-payment", "insert"))),
        svc("payment", _op(f"POST {api}paymentservice/payment", 3, C("mongo-payment", "insert"))),
        svc("cancel", _op(f"GET {api}cancelservice/cancel/{{orderId}}", 4,
                          C("ts-order-service", ORDER_GET),
                          C("ts-inside-payment-service", f"POST {api}inside_pay_service/drawback"),
                          C("ts-order-service", ORDER_STATUS),
                          C("ts-user-service", f"GET {api}userservice/users/id/{{id}}"),
                          C("rabbit-email", "publish"))),
        svc("notification", _op("consume email", 5, C("mailgun", "POST /v3/messages"))),
        svc("travel-plan", _op(f"POST {api}travelplanservice/travelPlan/cheapest", 3,
                               C("ts-route-plan-service", f"POST {api}routeplanservice/routePlan/cheapest"),
                               C("ts-seat-service", LEFT))),
        svc("route-plan", _op(f"POST {api}routeplanservice/routePlan/cheapest", 4,
                              C("ts-route-service", f"GET {api}routeservice/routes/{{id}}", fanout=2),
                              C("ts-travel-service", TRIP), C("ts-travel2-service",
                                                              f"GET {api}travel2service/trips/{{tripId}}"))),
        svc("execute", _op(f"POST {api}executeservice/execute/collected", 2,
                           C("ts-order-service", ORDER_GET), C("ts-order-service", ORDER_STATUS))),
    ]
    mongo = [("mongo-auth", "ts-auth"), ("mongo-security", "ts-security"), ("mongo-contacts", "ts-contacts"),
             ("mongo-assurance", "ts-assurance"), ("mongo-food", "ts-food"), ("mongo-consign", "ts-consign"),
             ("mongo-user", "ts-user"), ("mongo-inside-payment", "ts-inside-payment"),
             ("mongo-payment", "ts-payment")]
    backends = [
        Backend("mysql-ts", DB, "mysql", "ts", "ts-mysql", 3306, 1.2),
        Backend("mysql-order", DB, "mysql", "ts-order", "ts-order-mysql", 3306, 1.5),
        Backend("mysql-order-other", DB, "mysql", "ts-order-other", "ts-order-other-mysql", 3306, 1.5),
        *(Backend(k, DB, "mongodb", n, k, 27017, 1.5) for k, n in mongo),
        Backend("rabbit-email", Q, "rabbitmq", "email", "rabbitmq", 5672, 1.0,
                consumers=(("ts-notification-service", "consume email"),)),
        Backend("mailgun", EXT, address="api.mailgun.net", port=443, latency_ms=60.0),
    ]
    ui = services[0]
    weights = [5, 2, 2, 2, 2, 1, 1, 1, 1, 1]
    entries = [Entry(ui.id, op.name, w) for op, w in zip(ui.operations, weights)]
    nodes = [f"tt-node-{i}" for i in range(1, 7)]
    return Topology.of("trainticket", _place(services, nodes), backends, entries)


# -- tiny (for tests) -------------------------------------------------------------------
def tiny() -> Topology:
    """gateway → orders → {catalog ∥ pricing, payments (retried) → ext, db, queue → mailer};
    gateway → recs (fallback) → catalog; catalog ⇄ recs is a cycle bounded by depth."""
    C = Call

    def op(name: str, ms: float, *calls: Call) -> Operation:
        return Operation(name, ms, 0.2, 0.0, tuple(calls))

    services = [
        Service("gateway", (
            op("GET /checkout", 2, C("shop/orders", "POST /orders")),
            op("GET /home", 2, C("recs", "GET /recs", fallback=True), C("catalog", "GET /items")),
        ), "", "1.0.0", "n1", "n1"),
        Service("orders", (op("POST /orders", 4, C("catalog", "GET /items", parallel=True),
                              C("pricing", "GET /price", parallel=True),
                              C("payments", "POST /pay", retry=True),
                              C("orders-db", "INSERT"), C("order-events", "publish")),),
                "shop", "2.3.0", "n1", "n1"),
        Service("catalog", (op("GET /items", 3, C("catalog-db", "SELECT"),
                               C("recs", "GET /recs", probability=0.3, fallback=True)),),
                "", "1.1.0", "n2", "n2"),
        Service("recs", (op("GET /recs", 5, C("catalog", "GET /items")),), "", "0.9.0", "n2", "n2"),
        Service("pricing", (op("GET /price", 2),), "", "1.0.0", "n2", "n2"),
        Service("payments", (op("POST /pay", 3, C("paygate", "POST /v1/charge")),), "", "3.1.4", "n1", "n1"),
        Service("mailer", (op("consume order-events", 4),), "", "1.0.0", "n2", "n2"),
    ]
    backends = [
        Backend("orders-db", DB, "postgresql", "orders", "orders-db", 5432, 2.0),
        Backend("catalog-db", DB, "mysql", "catalog", "catalog-db", 3306, 1.0),
        Backend("order-events", Q, "kafka", "order-events", "kafka", 9092, 1.0,
                consumers=(("mailer", "consume order-events"),)),
        Backend("paygate", EXT, address="api.paygate.example", port=443, latency_ms=20.0),
    ]
    entries = [Entry("gateway", "GET /checkout", 1.0), Entry("gateway", "GET /home", 1.0)]
    return Topology.of("tiny", services, backends, entries, max_depth=6)


# -- generator -----------------------------------------------------------------------
def generate(n_services: int, seed: int = 0) -> Topology:
    """A layered microservice graph of ``n_services`` (50–2,000) with realistic skew.

    Layer 0 is called by ``user``. Callees are drawn by preferential attachment (weight
    ∝ (in-degree + 1)²), which produces hubs; every service gets at least one caller from
    the layer above so all are reachable. Databases are shared the same way; about five
    services share a host. A few back edges make service-level cycles (bounded by the
    engine's depth limit), and a share of calls carry fallbacks, retries or go through a
    queue. Call probabilities keep the expected trace size bounded at any ``n``.
    """
    if not 50 <= n_services <= 2000:
        raise ValueError(f"n_services must be within 50..2000, not {n_services}")
    rng = random.Random(f"generate:{n_services}:{seed}")
    n = n_services
    layers_n = max(4, min(8, round(math.log(n, 3)) + 1))
    n_entry = max(3, n // 25)
    rest = n - n_entry
    w = [1.6 ** i for i in range(1, layers_n)]
    sizes = [n_entry] + [max(1, int(rest * x / sum(w))) for x in w]
    sizes[-1] += n - sum(sizes)
    layer_of: list[int] = [li for li, size in enumerate(sizes) for _ in range(size)]
    n_teams = max(2, n // 40)
    names = [f"svc-{i:04d}" for i in range(n)]
    ns = [f"team-{rng.randrange(n_teams):02d}" for _ in range(n)]
    ids = [f"{ns[i]}/{names[i]}" for i in range(n)]
    ops_of = [[f"GET /api/v1/op{j}" for j in range(rng.choice((1, 1, 2, 3)))] for _ in range(n)]
    by_layer: list[list[int]] = [[i for i in range(n) if layer_of[i] == li] for li in range(layers_n)]
    indeg = [0] * n
    calls: list[list[list[tuple[int, int]]]] = [[[] for _ in ops_of[i]] for i in range(n)]

    def pick(cands: list[int]) -> int:
        return rng.choices(cands, weights=[(indeg[c] + 1) ** 2 for c in cands])[0]

    for li in range(layers_n - 1):  # ensure reachability first, then add skewed edges
        for callee in by_layer[li + 1]:
            caller = rng.choice(by_layer[li])
            calls[caller][rng.randrange(len(ops_of[caller]))].append((callee, rng.randrange(len(ops_of[callee]))))
            indeg[callee] += 1
    for i in range(n):
        li = layer_of[i]
        if li == layers_n - 1:
            continue
        for op_calls in calls[i]:
            for _ in range(rng.choice((0, 1, 1, 2))):
                deeper = by_layer[min(layers_n - 1, li + 1 + (rng.random() < 0.25))]
                callee = pick(deeper)
                op_calls.append((callee, rng.randrange(len(ops_of[callee]))))
                indeg[callee] += 1

    systems = ("postgresql", "mysql", "mongodb", "redis")
    dbs = [Backend(f"db-{k}", DB, systems[k % 4], f"store-{k:03d}", f"db-{k}.data", 5432, 1.5)
           for k in range(max(3, n // 10))]
    db_use = [0] * len(dbs)
    queues = [Backend(f"queue-{k}", Q, "kafka", f"events-{k:02d}", "kafka", 9092, 1.0,
                      consumers=tuple((ids[c], ops_of[c][0]) for c in
                                      rng.sample(by_layer[-1], min(2, len(by_layer[-1])))))
              for k in range(max(1, n // 60))]
    exts = [Backend(f"ext-{k}", EXT, address=f"api{k}.partner.example", port=443, latency_ms=30.0)
            for k in range(max(1, n // 150))]
    hosts = [f"node-{k:03d}" for k in range(max(3, n // 5))]
    services = []
    for i in range(n):
        ops = []
        for j, op_name in enumerate(ops_of[i]):
            out = calls[i][j]
            branch = 1.15 if layer_of[i] else 2.0  # expected service calls per span
            p = min(1.0, branch / len(out)) if out else 1.0
            cl = [Call(ids[c], ops_of[c][cj], probability=round(p, 3),
                       fallback=rng.random() < 0.08, retry=rng.random() < 0.08) for c, cj in out]
            if layer_of[i] >= layers_n - 2 or rng.random() < 0.3:
                k = rng.choices(range(len(dbs)), weights=[u + 1 for u in db_use])[0]
                db_use[k] += 1
                cl.append(Call(dbs[k].key, rng.choice(("SELECT", "INSERT", "UPDATE")), retry=rng.random() < 0.05))
            if rng.random() < 0.03:
                cl.append(Call(rng.choice(queues).key, "publish", probability=0.5))
            if rng.random() < 0.02:
                cl.append(Call(rng.choice(exts).key, "POST /v1/call", probability=0.5))
            if layer_of[i] >= 2 and rng.random() < 0.02:  # back edge: a service-level cycle
                back = rng.choice(by_layer[rng.randrange(1, layer_of[i])])
                cl.append(Call(ids[back], ops_of[back][0], probability=0.1, fallback=True))
            ops.append(Operation(op_name, round(rng.lognormvariate(math.log(3.0), 0.6), 2), 0.35,
                                 0.001, tuple(cl)))
        host = rng.choice(hosts)
        services.append(Service(names[i], tuple(ops), ns[i], f"1.{rng.randrange(20)}.{rng.randrange(10)}",
                                host, host, "", "http"))
    entries = [Entry(ids[i], ops_of[i][0], 1.0 / (r + 1)) for r, i in enumerate(by_layer[0])]
    used = {c.target for s in services for o in s.operations for c in o.calls}
    backends = [b for b in (*dbs, *queues, *exts) if b.key in used]
    return Topology.of(f"generated-{n}-{seed}", services, backends, entries, max_depth=layers_n + 4)


_GENERATED = re.compile(r"generated-(\d+)(?:-(\d+))?")


@functools.lru_cache(maxsize=16)
def get(name: str) -> Topology:
    """A topology by name: ``sockshop``, ``boutique``, ``trainticket``, ``generated-<n>[-<seed>]``."""
    builders = {"sockshop": sockshop, "boutique": boutique, "onlineboutique": boutique, "boutique-day": boutique_day,
                "trainticket": trainticket, "tiny": tiny}
    if name in builders:
        return builders[name]()
    m = _GENERATED.fullmatch(name)
    if m:
        return generate(int(m.group(1)), int(m.group(2) or 0))
    raise KeyError(f"unknown topology {name!r}; known: {', '.join(NAMES)}, generated-<n>[-<seed>]")
