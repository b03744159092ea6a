// What calls X?
MATCH p = (:Entity)-[:CALLS]->(:Entity {id: 'sock-shop/orders'}) RETURN p

// What does X depend on (transitively)?
MATCH p = (:Entity {id: 'sock-shop/front-end'})-[:CALLS*1..4]->(:Entity) RETURN p

// The last incidents and their suspects
MATCH (i:Incident) WITH i ORDER BY i.created DESC LIMIT 5
MATCH p = (i)-[:SUSPECTS|BLAMES]->(:Entity) RETURN p

// What did the last incident blame, and why?
MATCH (i:Incident) WITH i ORDER BY i.created DESC LIMIT 1
MATCH (i)-[s:SUSPECTS]->(e) RETURN i.id, s.rank, e.id, s.probability, i.response_json ORDER BY s.rank

// What breaks if X fails (everything that calls it, transitively)?
MATCH p = (:Entity)-[:CALLS*1..6]->(:Entity {id: 'db:mongodb/orders'}) RETURN p

// Deployments in the last hour
MATCH p = (d:Deployment)-[:OF]->(:Entity)
WHERE d.at > timestamp() - 3600 * 1000 RETURN p

// What was done about incidents: proposed, decided by whom, executed, outcome
MATCH (s:RemediationStep) WITH s ORDER BY s.at DESC LIMIT 30
MATCH p = (s)-[:STEP_OF|TARGETS]->() RETURN p
