"""The bert_nsp family."""
