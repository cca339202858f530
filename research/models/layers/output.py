"""The output layer tied to the target embedding, with its backward pass written out.

Why by hand: for `logits = h @ E^T` autodiff asks for the embedding gradient
as `g^T h`, and XLA on CPU then materialises the [tokens, vocabulary] logit
gradient TRANSPOSED before the matmul: at the benchmark shape (2,048 tokens,
8,000 pieces) that one strided copy cost about as much as the matmul itself.
Stating the same gradient as a contraction over the token axis,
`einsum(h, g) -> [D, V]`, lets XLA read `g` in the layout it was written in.
The arithmetic is unchanged (the same products and sums).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


@jax.custom_vjp
def tied_logits(h, table):
    """h [..., D], table [V, D] -> logits [..., V] = h @ table^T."""
    return jnp.einsum("...d,vd->...v", h, table)


def _forward(h, table):
    return tied_logits(h, table), (h, table)


def _backward(residuals, g):
    h, table = residuals
    d_h = jnp.einsum("...v,vd->...d", g, table)
    d_table = jnp.einsum("...d,...v->dv", h, g).T
    return d_h, d_table


tied_logits.defvjp(_forward, _backward)
