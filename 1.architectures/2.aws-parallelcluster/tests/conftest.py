"""What the user's AWS account holds before the README starts, on the emulator: the SSH key pair.
(ParallelCluster's official AMIs, owned by `amazon`, are in every region's catalogue of the emulator.)"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

KEY_NAME = "my-key"  # the README's `--key-name "${KEY_NAME:-my-key}"`


@pytest.fixture(scope="module")
def key_pair(aws_emulator) -> Iterator[str]:
    """The EC2 key pair the README's configs name, created in the emulator and deleted afterwards."""
    ec2 = aws_emulator.client("ec2")
    ec2.create_key_pair(KeyName=KEY_NAME, KeyType="ed25519")
    yield KEY_NAME
    ec2.delete_key_pair(KeyName=KEY_NAME)
