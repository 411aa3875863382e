"""gRPC plumbing shared by every treadle server and client."""
