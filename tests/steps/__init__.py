"""The steps of the procedure, driven on a fake cluster without sockets."""
