import socket

import boto3
import pytest


def test_the_suite_cannot_reach_real_aws():
    # Outside moto, a boto3 call would go to AWS; the guard in conftest.py stops it.
    client = boto3.client("sqs", region_name="eu-west-1")
    with pytest.raises(Exception, match="only loopback is allowed"):
        client.list_queues()


def test_loopback_stays_reachable():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    client = socket.create_connection(server.getsockname(), timeout=1)
    client.close()
    server.close()
