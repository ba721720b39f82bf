#!/usr/bin/python3
"""Chat with the gateway over gRPC using stubs generated from proto/.

usage: chat.py [--target HOST:PORT] [--model NAME] [--stream] [--timeout S] TEXT
"""
import argparse
import sys

import grpc

from aigateway.v1 import inference_pb2 as pb, inference_pb2_grpc


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", default="127.0.0.1:50051")
    ap.add_argument("--model", default="tiny-lm")
    ap.add_argument("--stream", action="store_true")
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("text")
    a = ap.parse_args()
    req = pb.ChatCompletionRequest(
        model=a.model,
        messages=[pb.ChatMessage(role="user", content=pb.MessageContent(text=a.text))])
    req.max_tokens.value = a.max_tokens
    stub = inference_pb2_grpc.InferenceStub(grpc.insecure_channel(a.target))
    try:
        if a.stream:
            for chunk in stub.StreamChatCompletion(req, timeout=a.timeout):
                for c in chunk.choices:
                    if c.delta.HasField("content"):
                        print(c.delta.content.value, end="", flush=True)
            print()
        else:
            resp = stub.CreateChatCompletion(req, timeout=a.timeout)
            print(resp.choices[0].message.content.text)
    except grpc.RpcError as e:
        print(f"error: {e.code().name}: {e.details()}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
