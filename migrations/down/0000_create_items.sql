-- Reverses 0000_create_items.sql. Drops every stored item: roll back only what you can lose.
DROP TABLE "items";
