"""A one-layer decoder that attends over a KV cache of 16 positions, one token per call."""
import torch
import torch.nn as nn


class KVDecoder(nn.Module):
    def __init__(self, vocab=64, d=32, ctx=16):
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        self.q, self.k, self.v = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.out = nn.Linear(d, vocab)
        self.register_buffer("k_cache", torch.zeros(1, ctx, d))
        self.register_buffer("v_cache", torch.zeros(1, ctx, d))

    def forward(self, token, pos):
        h = self.emb(token)                      # (1, 1, d)
        self.k_cache[:, pos] = self.k(h)         # indexed assignment: coremltools' guide
        self.v_cache[:, pos] = self.v(h)
        mask = (torch.arange(self.k_cache.shape[1]) <= pos).view(1, 1, -1)
        att = (self.q(h) @ self.k_cache.transpose(1, 2) / 32 ** 0.5).masked_fill(~mask, -1e4)
        return self.out(att.softmax(-1) @ self.v_cache)


def build():
    return KVDecoder()
