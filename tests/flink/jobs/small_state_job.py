"""A new user's first keyed PyFlink job: a little state per key (it stays inline in ``_metadata``),
an unnamed ``key_by(...).process(...)`` (Flink names it ``KEYED_PROCESS``), running until cancelled.

``python small_state_job.py`` under ``flink run -d -py``; checkpoints every second into
``execution.checkpointing.dir`` of the cluster's configuration.
"""
from __future__ import annotations

import time

from pyflink.common import Types, WatermarkStrategy
from pyflink.datastream import KeyedProcessFunction, RuntimeContext, StreamExecutionEnvironment
from pyflink.datastream.connectors.number_seq import NumberSequenceSource
from pyflink.datastream.state import ValueStateDescriptor


class Count(KeyedProcessFunction):
    def open(self, ctx: RuntimeContext):
        self.count = ctx.get_state(ValueStateDescriptor("count", Types.LONG()))

    def process_element(self, value, ctx):
        n = (self.count.value() or 0) + 1
        self.count.update(n)
        yield n


def slow(n):
    time.sleep(0.005)
    return n


env = StreamExecutionEnvironment.get_execution_environment()
env.enable_checkpointing(1000)
numbers = env.from_source(NumberSequenceSource(0, 10 ** 9), WatermarkStrategy.no_watermarks(), "numbers")
numbers.map(slow, output_type=Types.LONG()).key_by(lambda n: n % 10, key_type=Types.LONG()) \
    .process(Count(), output_type=Types.LONG()).print()
env.execute("small state")
