#!/usr/bin/python3
"""End-to-end check of the hf backend (meant for a GPU machine with
`transformers` and `tokenizers` installed; runs on CPU too).

    cd python && AIGW_STUBS=<build>/gen/python /usr/bin/python3 tools/check_hf_gpu.py

It builds, in a temporary directory, a byte-level BPE tokenizer trained on the
shipped corpus and a tiny randomly initialised GPT-2 model, starts the server
(`-m aigw_model_server --backend hf --model-dir TMP --port 0`), makes one chat,
one streaming chat and one embedding call, prints the answers, sends SIGTERM and
checks the exit status. Exits non-zero on any failure. The model is random, so
the text is gibberish: the check is about the plumbing (device, KV-cache loop,
streaming, embeddings), not quality.
"""
from __future__ import annotations

import glob
import os
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON_DIR = os.path.dirname(HERE)
sys.path.insert(0, PYTHON_DIR)


def build_model(out: str) -> None:
    import torch
    import transformers
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    files = sorted(glob.glob(os.path.join(PYTHON_DIR, "data", "corpus", "*.txt")))
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=1000, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train(files, trainer)
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|endoftext|>", bos_token="<|endoftext|>",
        unk_token="<|endoftext|>", pad_token="<|endoftext|>")
    # a chat template, so that the server's chat path goes through apply_chat_template
    fast.chat_template = ("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
                          "{% if add_generation_prompt %}assistant:{% endif %}")
    fast.save_pretrained(out)
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(vocab_size=len(fast), n_positions=256, n_embd=64,
                                  n_layer=2, n_head=2, bos_token_id=fast.eos_token_id,
                                  eos_token_id=fast.eos_token_id)
    transformers.GPT2LMHeadModel(cfg).save_pretrained(out)
    print(f"built tiny GPT-2 ({sum(p.numel() for p in transformers.GPT2LMHeadModel(cfg).parameters())} "
          f"params, vocab {len(fast)}) in {out}; cuda available: {torch.cuda.is_available()}"
          f" ({torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU'}); "
          f"torch {torch.__version__}, transformers {transformers.__version__}")


def main() -> int:
    from aigw_model_server import stubs
    stubs_dir = stubs.setup()
    import grpc
    from aigateway.v1 import inference_pb2 as pb
    from aigateway.v1 import inference_pb2_grpc as pb_grpc
    from grpc_protos.health.v1 import health_pb2, health_pb2_grpc

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = os.path.join(tmp, "tiny-gpt2")
        build_model(model_dir)
        env = dict(os.environ, AIGW_STUBS=stubs_dir, PYTHONPATH=PYTHON_DIR)
        proc = subprocess.Popen([sys.executable, "-m", "aigw_model_server", "--backend", "hf",
                                 "--model-dir", model_dir, "--port", "0",
                                 "--host", "127.0.0.1"], cwd=PYTHON_DIR, env=env,
                                stdout=subprocess.PIPE, text=True)
        try:
            line = proc.stdout.readline()
            if "listening on port" not in line:
                print("server did not start:", line)
                return 1
            port = int(line.split()[-1])
            ch = grpc.insecure_channel(f"127.0.0.1:{port}")
            health = health_pb2_grpc.HealthStub(ch)
            deadline = time.time() + 120
            while health.Check(health_pb2.HealthCheckRequest()).status != \
                    health_pb2.HealthCheckResponse.SERVING:
                if time.time() > deadline or proc.poll() is not None:
                    print("server never became SERVING")
                    return 1
                time.sleep(0.5)
            stub = pb_grpc.InferenceStub(ch)
            models = stub.ListModels(pb.ListModelsRequest())
            model = models.data[0].id
            print("models:", [m.id for m in models.data])
            req = pb.ChatCompletionRequest(model=model)
            req.messages.add(role="user", content=pb.MessageContent(text="What is sed?"))
            req.max_tokens.value = 16
            req.seed.value = 1
            t = time.time()
            r = stub.CreateChatCompletion(req)
            print(f"chat ({time.time() - t:.2f}s): {r.choices[0].message.content.text!r} "
                  f"finish={r.choices[0].finish_reason} usage=({r.usage.prompt_tokens}, "
                  f"{r.usage.completion_tokens}, {r.usage.total_tokens})")
            assert r.usage.completion_tokens >= 1
            req.stream_options.include_usage.value = True
            chunks = list(stub.StreamChatCompletion(req))
            text = "".join(c.choices[0].delta.content.value for c in chunks if c.choices)
            print(f"stream: {len(chunks)} chunks, text {text!r}, "
                  f"usage {chunks[-1].usage.completion_tokens} tokens")
            assert text == r.choices[0].message.content.text, "same seed, same text"
            e = stub.CreateEmbedding(pb.EmbeddingRequest(
                model=model, input=pb.Prompt(texts=pb.StringList(values=["a b", "a b"]))))
            v = list(e.data[0].embedding)
            print(f"embedding: dim {len(v)}, norm {sum(x * x for x in v) ** 0.5:.4f}, "
                  f"identical inputs equal: "
                  f"{max(abs(x - y) for x, y in zip(v, e.data[1].embedding)) < 1e-3}")
            ch.close()
        finally:
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(timeout=30)
        print("server exit status", rc)
        return 0 if rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
