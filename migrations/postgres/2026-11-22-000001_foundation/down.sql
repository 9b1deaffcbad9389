DROP TABLE users;
DROP TABLE server_settings;
