"""The light stand-ins for ``qdrant_client.models``, under the name they first had; they live
in :mod:`ferrovec.qdrant.models`."""

from ferrovec.qdrant.models import *  # noqa: F403
