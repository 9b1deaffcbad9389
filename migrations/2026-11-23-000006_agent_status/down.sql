DROP TABLE agent_statuses;
