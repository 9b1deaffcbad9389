DROP TABLE calendar_oauth_states;
DROP TABLE calendar_connections;
