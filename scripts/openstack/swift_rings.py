"""Build Swift's account, container and object rings for the test bed: one device each,
one replica, in the current directory. One Python process instead of nine
swift-ring-builder calls (each pays Swift's import time: about 10 s in all on two cores).

  swift_rings.py ACCOUNT_PORT CONTAINER_PORT OBJECT_PORT
"""

import sys

from swift.common.ring import RingBuilder

PART_POWER = 8  # 256 partitions: plenty for one device
REPLICAS = 1
MIN_PART_HOURS = 1

for name, port in zip(("account", "container", "object"), sys.argv[1:4]):
    builder = RingBuilder(PART_POWER, REPLICAS, MIN_PART_HOURS)
    builder.add_dev({"region": 1, "zone": 1, "ip": "127.0.0.1", "port": int(port),
                     "device": "d1", "weight": 1.0})
    builder.rebalance()
    builder.get_ring().save(name + ".ring.gz")
    builder.save(name + ".builder")
