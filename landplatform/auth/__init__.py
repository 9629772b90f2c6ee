"""Who may do what: bearer-token verification, principals and their rights."""
