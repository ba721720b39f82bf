"""aigw_model_server: the reference implementation of the gateway's canonical
gRPC API (aigateway.v1.Inference) for local models."""
__version__ = "0.1.0"
