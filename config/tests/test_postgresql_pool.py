"""The PostgreSQL connection pool (``DB_POOL=true``) hands out its warmest connection."""

import pytest
from django.db import connection

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="the connection pool is PostgreSQL's"
    ),
]


@pytest.fixture
def pool():
    from config.postgresql.base import DatabaseWrapper

    settings_dict = {
        **connection.settings_dict,
        "CONN_MAX_AGE": 0,
        "OPTIONS": {
            **connection.settings_dict["OPTIONS"],
            "pool": {"min_size": 3, "max_size": 3},
        },
    }
    wrapper = DatabaseWrapper(settings_dict, alias="pool-test")
    pool = wrapper.pool
    pool.open(wait=True)
    yield pool
    wrapper.close_pool()


def test_the_most_recently_returned_connection_is_handed_out_first(pool):
    first, second = pool.getconn(), pool.getconn()
    pool.putconn(first)
    pool.putconn(second)
    # A queue (psycopg_pool's own order) would hand out the third, never-used connection.
    assert pool.getconn() is second
    assert pool.getconn() is first


def test_one_request_at_a_time_always_gets_the_same_server_process(pool):
    pids = set()
    for _ in range(5):
        with pool.connection() as conn:
            pids.add(conn.info.backend_pid)
    assert len(pids) == 1  # its prepared statements and caches stay warm
