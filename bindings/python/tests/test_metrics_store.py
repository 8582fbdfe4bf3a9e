import math

import pytest

import vigil
from conftest import T0


def metrics():
    return [
        vigil.Metric("cpu_usage", 0.25, T0, {"host": "h1", "cpu": "0"}),
        vigil.Metric("cpu_usage", 0.5, T0 + 1000, {"host": "h1", "cpu": "0"}),
        vigil.Metric("cpu_usage", 0.75, T0, {"host": "h2", "cpu": "0"}),
        vigil.Metric("mem_free", 1.5e9, T0, {"host": "h1"}),
        vigil.Metric("disk_free", None, T0 + 2000, {"host": "h1", "mount": "/"},
                     error="statvfs: permission denied"),
    ]


def test_metric_round_trip_through_a_batch_and_json():
    ms = metrics()
    with vigil.Batch(ms, agent="h1", batch_id="b-1") as batch:
        assert len(batch) == 5
        assert batch.agent == "h1" and batch.batch_id == "b-1"
        assert list(batch) == ms
        assert batch[-1].error == "statvfs: permission denied"
        assert math.isnan(batch[-1].value)
        text = batch.to_json()
        assert text.startswith('{"agent":"h1","batch_id":"b-1","metrics":[')
        with vigil.Batch.from_json(text) as back:
            assert list(back) == ms
            assert back.agent == "h1" and back.batch_id == "b-1"
            assert back.to_json() == text


def test_series_key_and_tag_order():
    m = vigil.Metric("cpu_usage", 1, T0, {"host": "h1", "cpu": "0"})
    assert m.series_key() == 'cpu_usage{cpu="0",host="h1"}'
    with vigil.Batch([m]) as batch:
        assert list(batch[0].tags) == ["cpu", "host"]


@pytest.mark.parametrize(
    "metric,cls,code,text",
    [
        (vigil.Metric("bad name", 1, T0), vigil.BadNameError, vigil.errors.ENAME, "name"),
        (vigil.Metric("x", float("inf"), T0), vigil.BadValueError, vigil.errors.EVALUE, "value"),
        (vigil.Metric("x", 1, T0, {"k": "v" * 1025}), vigil.LimitError, vigil.errors.ELIMIT,
         "tags.k"),
    ],
)
def test_bad_metrics_are_refused_with_their_code(metric, cls, code, text):
    with vigil.Batch() as batch:
        with pytest.raises(cls) as ei:
            batch.add(metric)
        assert ei.value.code == code
        assert text in ei.value.message
        assert isinstance(ei.value, vigil.InvalidArgumentError) or cls is vigil.LimitError
        assert len(batch) == 0


def test_bad_json_is_located():
    with pytest.raises(vigil.WrongTypeError) as ei:
        vigil.Batch.from_json('{"metrics":[{"name":"x","value":"1","ts":1}]}')
    assert ei.value.code == vigil.errors.ETYPE
    assert ei.value.message.startswith("metrics[0].value:")


def test_closed_batch_raises():
    batch = vigil.Batch()
    batch.close()
    batch.close()
    with pytest.raises(vigil.ClosedError):
        len(batch)


def test_query_matches_what_was_ingested(tmp_path):
    db = tmp_path / "vigil.db"
    with vigil.Store.open("sqlite://%s" % db) as store:
        assert store.scheme == "sqlite"
        r = store.write(vigil.Batch(metrics(), agent="h1", batch_id="b-1"))
        assert r == vigil.WriteResult(5, False, 4)
        again = store.write(vigil.Batch(metrics(), agent="h1", batch_id="b-1"))
        assert again.duplicate and again.written == 0
    assert db.exists() and db.stat().st_size > 0
    # a second process-level handle sees it on disk
    with vigil.Store.open("sqlite://%s" % db) as store:
        pts = store.query("cpu_usage")
        assert pts == [
            ('cpu_usage{cpu="0",host="h1"}', "cpu_usage", {"cpu": "0", "host": "h1"}, T0, 0.25, None),
            ('cpu_usage{cpu="0",host="h1"}', "cpu_usage", {"cpu": "0", "host": "h1"}, T0 + 1000, 0.5,
             None),
            ('cpu_usage{cpu="0",host="h2"}', "cpu_usage", {"cpu": "0", "host": "h2"}, T0, 0.75, None),
        ]
        assert all(isinstance(p, tuple) for p in pts)
        assert [p.value for p in store.query("cpu_usage", match={"host": "h2"})] == [0.75]
        assert [p.value for p in store.query("cpu_usage", match={"host": "h*"},
                                             start_ms=T0 + 1, end_ms=T0 + 5000)] == [0.5]
        assert [p.value for p in store.query("cpu_usage", match={"host": "h1"}, step_ms=60000,
                                             agg="max")] == [0.5]
        err = store.query("disk_free")
        assert len(err) == 1 and err[0].error == "statvfs: permission denied"
        assert math.isnan(err[0].value)
        assert list(store.iter_query("cpu_usage")) == pts
        assert [s.series for s in store.series("cpu_usage")] == [
            'cpu_usage{cpu="0",host="h1"}', 'cpu_usage{cpu="0",host="h2"}']
        assert sorted(p.value for p in store.latest("cpu_usage")) == [0.5, 0.75]
        with pytest.raises(vigil.BadValueError):
            store.query("cpu_usage", step_ms=1000, agg="median")


def test_iter_query_streams_and_stops_early(tmp_path):
    with vigil.Store.open("sqlite://%s" % (tmp_path / "big.db")) as store:
        n = 5000
        store.write(vigil.Metric("load", float(i), T0 + i) for i in range(n))
        it = store.iter_query("load", buffer=16)
        first = [next(it) for _ in range(10)]
        assert [p.value for p in first] == [float(i) for i in range(10)]
        it.close()  # stops the query thread
        assert len(store.query("load")) == n
        total = 0
        for i, p in enumerate(store.iter_query("load", buffer=8)):
            assert p.ts_ms == T0 + i
            total += 1
        assert total == n


def test_store_open_error_maps_to_its_class(tmp_path):
    with pytest.raises(vigil.UnsupportedError) as ei:
        vigil.Store.open("mysql://nowhere/db")
    assert ei.value.code == vigil.errors.EUNSUPPORTED
    bad = tmp_path / "not.db"
    bad.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(vigil.CorruptError):
        vigil.Store.open("sqlite://%s" % bad)
