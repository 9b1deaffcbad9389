DROP TABLE read_positions;
DROP TABLE messages;
DROP TABLE conversations;
