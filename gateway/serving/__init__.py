"""Serving the app: the listening socket, worker processes, and the drain on SIGTERM."""
