"""A small CNN over a waveform of any length: conv1d frames, a global mean, a linear head."""
import torch
import torch.nn as nn


class WaveformCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.frames = nn.Conv1d(1, 16, kernel_size=400, stride=160)
        self.conv = nn.Conv1d(16, 32, 3, padding=1)
        self.head = nn.Linear(32, 10)

    def forward(self, waveform):
        x = torch.relu(self.frames(waveform.unsqueeze(1)))
        x = torch.relu(self.conv(x))
        return self.head(x.mean(dim=2))


def build():
    return WaveformCNN()
