"""This host: what a command needs (plan), what is here (probe), and getting it ready (setup)."""
