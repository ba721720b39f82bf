#!/bin/sh
# grpc/health and grpc/reflection stubs would be shadowed by the grpcio
# package ("grpc"): move them under grpc_protos/ and fix their imports.
set -e
cd "$1"
rm -rf grpc_protos
mv grpc grpc_protos
sed -i 's/^from grpc\.\(health\|reflection\)/from grpc_protos.\1/' grpc_protos/*/*/*_pb2_grpc.py
