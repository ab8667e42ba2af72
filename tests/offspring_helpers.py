"""Settings shared by the offspring tests."""

from bitlens.offspring.policy import ContextConfig

# Small enough that each offspring trains for one or two steps; the splits fit in the 2 000-byte
# held-out tail of the 20 KB test corpus: 32 pool windows, 12 validation and 16 test windows.
MICRO_CONTEXT = ContextConfig(
    pool_bytes=1_025,
    validation_bytes=385,
    test_bytes=513,
    window=32,
    batch_size=4,
    reference_steps=2,
    prompt_bytes=4,
)
