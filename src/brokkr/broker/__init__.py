"""The broker: REST API and database, the source of truth. Never imports agent, client or cli."""
