"""TaskClient.from_env with the fleet's TLS and Sentinel variables, against real servers.

tests/clients/python_client_test.sh starts them (tests/clients/fleet.sh, start_tls_and_sentinel): a redis-server
with a TLS port only that requires client certificates, and a sentinel monitoring the plain one as "mymaster".
"""
from __future__ import annotations

import os
import unittest
from typing import Dict

import redis

from streamfleet_client import TaskClient
from streamfleet_client.config import redis_from_env


def _need(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} is not set: run tests/clients/python_client_test.sh BUILD_DIR")
    return value


class FromEnvTlsAndSentinelTest(unittest.TestCase):
    def setUp(self) -> None:
        self.port = int(_need("STREAMFLEET_TEST_REDIS_PORT"))
        self.tls_port = int(_need("STREAMFLEET_TEST_TLS_PORT"))
        self.certs = _need("STREAMFLEET_TEST_TLS_CERTS")
        self.sentinel_port = int(_need("STREAMFLEET_TEST_SENTINEL_PORT"))
        self.tls_env: Dict[str, str] = {
            "REDIS_URL": f"rediss://127.0.0.1:{self.tls_port}", "REDIS_TLS_CA": f"{self.certs}/ca.crt",
            "REDIS_TLS_CERT": f"{self.certs}/client.crt", "REDIS_TLS_KEY": f"{self.certs}/client.key"}

    def test_a_rediss_url_and_the_tls_files_reach_a_tls_only_redis_that_asks_for_a_client_certificate(self) -> None:
        client = TaskClient.from_env(self.tls_env)
        result = client.enqueue("noop", {"over": "tls"}, queue="unread")
        status = client.status(result.id)
        self.assertIsNotNone(status)
        self.assertEqual(status.state, "pending")
        # REDIS_TLS=true with REDIS_HOST/REDIS_PORT says the same; the name "localhost" is in the certificate.
        by_host = redis_from_env({**self.tls_env, "REDIS_URL": "", "REDIS_TLS": "true", "REDIS_HOST": "localhost",
                                  "REDIS_PORT": str(self.tls_port)})
        self.assertTrue(by_host.ping())

    def test_tls_is_verified_and_misconfiguration_is_named(self) -> None:
        with self.assertRaises(redis.exceptions.ConnectionError) as unknown_ca:
            redis_from_env({**self.tls_env, "REDIS_TLS_CA": f"{self.certs}/other-ca.crt"}).ping()
        self.assertIn("certificate verify failed", str(unknown_ca.exception))
        with self.assertRaises(redis.exceptions.ConnectionError):
            redis_from_env({**self.tls_env, "REDIS_TLS_CERT": "", "REDIS_TLS_KEY": ""}).ping()
        # The same server reached at an address its certificate does not name.
        with self.assertRaises(redis.exceptions.ConnectionError) as wrong_address:
            redis_from_env({**self.tls_env, "REDIS_URL": f"rediss://127.0.0.2:{self.tls_port}"}).ping()
        self.assertIn("127.0.0.2", str(wrong_address.exception))
        with self.assertRaisesRegex(ValueError, "host names"):
            redis_from_env({**self.tls_env, "REDIS_CLUSTER": "true"})
        with self.assertRaisesRegex(ValueError, "REDIS_TLS=true"):
            redis_from_env({"REDIS_PORT": str(self.port), "REDIS_TLS_CA": f"{self.certs}/ca.crt"})
        with self.assertRaisesRegex(ValueError, "REDIS_TLS=true"):
            redis_from_env({"REDIS_PORT": str(self.port), "REDIS_TLS_KEY": f"{self.certs}/client.key"})
        with self.assertRaisesRegex(ValueError, "together"):
            redis_from_env({**self.tls_env, "REDIS_TLS_KEY": ""})
        with self.assertRaisesRegex(ValueError, "REDIS_TLS_SERVER_NAME"):
            redis_from_env({**self.tls_env, "REDIS_TLS_SERVER_NAME": "redis.example.com"})

    def test_behind_sentinel_the_master_the_sentinels_name_gets_the_task(self) -> None:
        client = TaskClient.from_env({"REDIS_SENTINELS": f"127.0.0.1:{self.sentinel_port}",
                                      "REDIS_SENTINEL_MASTER": "mymaster"})
        result = client.enqueue("noop", {"via": "sentinel"}, queue="unread")
        direct = redis.Redis(port=self.port)
        self.assertEqual(direct.exists(client.keys.status(result.id)), 1, "the task is on the master the sentinel names")
        with self.assertRaisesRegex(ValueError, "REDIS_SENTINEL_MASTER"):
            redis_from_env({"REDIS_SENTINELS": f"127.0.0.1:{self.sentinel_port}"})
        with self.assertRaisesRegex(ValueError, "host:port"):
            redis_from_env({"REDIS_SENTINELS": "nowhere", "REDIS_SENTINEL_MASTER": "m"})


if __name__ == "__main__":
    unittest.main()
