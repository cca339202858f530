"""Benchmark library: a timing harness, the machine's matmul peak, analytic
FLOPs, the PyTorch peers and the markdown report. PyTorch is optional and is
imported only inside `torch_peer`, only when a peer is actually built."""
