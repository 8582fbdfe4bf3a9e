import pytest

import vigil


class QueueDepth(vigil.Collector):
    name = "queue_depth"
    keys = ("queues",)

    def __init__(self, config, ctx):
        super().__init__(config, ctx)
        self.queues = config.get("queues") or []
        if not self.queues:
            config.fail("queues", "expected at least one queue", vigil.errors.EMISSING)
        self.n = 0

    def collect(self, now_ms):
        self.n += 1
        for i, q in enumerate(self.queues):
            yield ("queue_depth", float(10 * (i + 1) + self.n), {"queue": q})
        yield vigil.Metric("queue_polls", self.n, now_ms)


class Broken(vigil.Collector):
    name = "broken"

    def collect(self, now_ms):
        raise OSError("the sensor fell off")


AGENT = """
agent: {id: host-a, tags: {env: test}}
collectors:
  - type: queue_depth
    name: jobs
    interval: 1s
    queues: [emails, thumbnails]
"""


def test_python_collector_samples_reach_a_batch():
    with vigil.CollectorTypes() as types:
        reg = types.register(QueueDepth)
        with vigil.Agent(AGENT, collector_types=types) as agent:
            assert agent.id == "host-a"
            assert len(agent) == 1
            assert reg.instances == 1
            with agent.collect_once() as batch:
                got = {(m.name, m.tags.get("queue")): m for m in batch}
            depth = got[("queue_depth", "emails")]
            assert depth.value == 11.0
            assert depth.tags == {"queue": "emails", "host": "host-a", "env": "test"}
            assert got[("queue_depth", "thumbnails")].value == 21.0
            assert got[("queue_polls", None)].value == 1.0
            assert batch.closed
            with agent.collect_once() as batch2:
                assert sorted(m.value for m in batch2 if m.name == "queue_depth") == [12.0, 22.0]
        assert reg.instances == 0


def test_exception_in_collect_becomes_an_error_sample():
    with vigil.CollectorTypes() as types:
        reg = types.register(Broken)
        with vigil.Agent("collectors:\n  - {type: broken, name: b}\n",
                         collector_types=types, agent_id="h") as agent:
            with agent.collect_once() as batch:
                errs = [m for m in batch if m.name == "vigil_collector_error"]
        assert len(errs) == 1
        assert "collector broken: OSError: the sensor fell off" in errs[0].error
        assert reg.errors == 1 and reg.last_error.endswith("the sensor fell off")


def test_collector_config_errors_are_located():
    with vigil.CollectorTypes() as types:
        types.register(QueueDepth)
        with pytest.raises(vigil.MissingError) as ei:
            vigil.Agent("collectors:\n  - {type: queue_depth, queues: []}\n",
                        collector_types=types, agent_id="h")
        assert ei.value.message.startswith("agent.yaml:2:")
        assert "expected at least one queue" in ei.value.message
        with pytest.raises(vigil.UnknownKeyError) as ei:
            vigil.Agent("collectors:\n  - {type: queue_depth, queus: [a]}\n",
                        collector_types=types, agent_id="h")
        assert "agent.yaml:2:" in ei.value.message and "queus" in ei.value.message
