"""The REST gateway: Envoy's gRPC-JSON transcoder in front of the gRPC server.

`descriptors` builds the descriptor set from the protos and reads the REST-mapped services out
of it; `config` turns that into Envoy's configuration; `process` runs Envoy; `envoy` is the
entry point the command line uses.
"""
