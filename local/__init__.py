"""The local runtime behind ``make run``: the synthesized app on 127.0.0.1, AWS emulated.

* ``template``       reads cdk.out: functions, routes, tables, queues, retries, destinations
* ``sandbox``        Lambda execution environments (one process each, killed on timeout)
* ``lambda_service`` synchronous and asynchronous invocation with Lambda's semantics
* ``apigateway``     REST API stage semantics: routing, IAM identity, validation, throttling
* ``server``         wires them to moto's server and serves the HTTP endpoints
"""
