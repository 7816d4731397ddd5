"""The local runtime behind ``make run``: the synthesized app on 127.0.0.1, AWS emulated.

Tooling you run, not code you edit: it reads whatever ``cdk.out`` holds, so a fork's
own routes, functions, tables and settings are served without a change here. Your code
goes in ``lambdas/`` (tasks: ``lambdas/jobs/tasks.py``) and ``stacks/``.

* ``template``       reads cdk.out: functions, routes, tables, queues, retries, destinations
* ``provisioning``   starts moto's server and creates the template's resources in it
* ``moto_server``    moto with its corrections where it is more lenient than AWS
* ``sandbox``        Lambda execution environments (one process each, killed on timeout)
* ``lambda_service`` synchronous and asynchronous invocation with Lambda's semantics
* ``apigateway``     REST API stage semantics: routing, IAM identity, validation, throttling
* ``websocket``      WebSocket APIs and their @connections management API
* ``event_sources``  SQS and DynamoDB stream mappings, scheduled rules
* ``faults``         crashes, hangs and throttling injected for the fault tests
* ``server``         wires them together and serves the HTTP endpoints
"""
