"""One module per /v2 resource."""
