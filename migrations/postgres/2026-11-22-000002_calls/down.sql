DROP TABLE call_events;
DROP TABLE call_keys;
DROP TABLE calls;
