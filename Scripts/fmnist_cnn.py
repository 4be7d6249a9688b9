"""The small CNN of Scripts/retrain.py (Fashion-MNIST, 1x28x28 -> 10 classes).

Its penultimate layer is the module `embed` (64-d after ReLU): the representation that `retrain.py` hands to
hdlabel, and the layer to name when embedding with your own checkpoint:

  Scripts/embed.py IMAGES.npy --encoder own --model-file Scripts/fmnist_cnn.py --model-class SmallCNN \
      --weights RUN/base.weights.pt --layer embed -o emb.npy
"""
import torch
from torch import nn


def _block(cin, cout, stride=1):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class SmallCNN(nn.Module):
    def __init__(self, num_classes=10, width=16, dim=64):
        super().__init__()
        w = width
        self.features = nn.Sequential(
            _block(1, w, stride=2),                  # 14x14 (a stride-2 stem keeps CPU training cheap)
            _block(w, 2 * w), nn.MaxPool2d(2),       # 7x7
            _block(2 * w, 4 * w), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.embed = nn.Sequential(nn.Linear(4 * w, dim), nn.ReLU(inplace=True))
        self.fc = nn.Linear(dim, num_classes)

    def forward_features(self, x):
        return self.embed(self.features(x))

    def forward(self, x):
        return self.fc(self.forward_features(x))
