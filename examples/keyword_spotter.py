"""A small keyword-spotting CNN over a log-mel patch: the README's "bring your own model"
example. `build()` returns the module; coreml-routes builds it inside each route's env.

    coreml-routes compare --model examples/keyword_spotter.py:build --input mel:1x1x40x98
"""
import torch.nn as nn
import torch.nn.functional as F


class KeywordSpotter(nn.Module):
    def __init__(self, classes=12):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(32)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1, groups=1)
        self.bn2 = nn.BatchNorm2d(64)
        self.fc = nn.Linear(64, classes)

    def forward(self, mel):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(mel))), 2)
        x = F.avg_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
        x = x.mean(dim=(2, 3))                       # global average over frequency and time
        return F.log_softmax(self.fc(x), dim=1)


def build():
    return KeywordSpotter()
