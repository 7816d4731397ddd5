"""An optional AWS WAF web ACL in front of the API (``waf_enabled``; on in the prod preset).

Rules, in order: a per-IP rate limit (429), a body-size limit that refuses oversized
``POST /jobs`` bodies before any function runs (413), and AWS's managed common rule set
(403), whose body rules and no-User-Agent rule are counted rather than enforced
(``COUNTED_COMMON_RULES`` says why, one by one). Answers are JSON ``{"message": ...}`` like every
other error of the API.
"""

from __future__ import annotations

import json

from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from stacks.config import AppConfig

# Request body sizes API Gateway can forward to WAF for inspection (16 KB is free).
INSPECTION_LIMITS_KB = (16, 32, 48, 64)
# Rules of AWS's common rule set (AWS WAF Developer Guide, "Core rule set (CRS) managed rule
# group") that are counted, not enforced: each blocks valid requests to a JSON job API whose
# callers are IAM identities. Counting keeps their matches in the metrics and sampled
# requests (the Developer Guide's advice for tuning a managed group: set a rule to Count and
# watch it before you enforce it); the URI, query string and cookie rules stay enforced.
COUNTED_COMMON_RULES = {
    # Our own BodyTooLarge rule enforces max_request_bytes; this one refuses anything over 8 KB.
    "SizeRestrictions_BODY": "bodies over 8 KB",
    # A job input is data checked against its task's schema and never rendered as a page:
    # HTML, a relative path or a URL with an IPv4 host in it is a legitimate input.
    "CrossSiteScripting_BODY": "job inputs holding HTML",
    "GenericLFI_BODY": "job inputs holding relative paths (../)",
    "GenericRFI_BODY": "job inputs holding URLs with an IPv4 host",
    # callback_url is judged by the callback address policy (lambdas/jobs/callbacks.py), which
    # refuses link-local addresses (the metadata endpoint among them) when the job is submitted.
    "EC2MetaDataSSRF_BODY": "job inputs naming 169.254.169.254",
    # SigV4-signed backends authenticate every call; a missing User-Agent says nothing of them.
    "NoUserAgent_HEADER": "signed clients that send no User-Agent",
}


def _visibility(name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=True
    )


def _block(status: int, body_key: str) -> wafv2.CfnWebACL.RuleActionProperty:
    return wafv2.CfnWebACL.RuleActionProperty(
        block=wafv2.CfnWebACL.BlockActionProperty(
            custom_response=wafv2.CfnWebACL.CustomResponseProperty(
                response_code=status, custom_response_body_key=body_key
            )
        )
    )


class ApiFirewall(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: AppConfig, stage: apigw.Stage) -> None:
        super().__init__(scope, construct_id)
        rules = [
            wafv2.CfnWebACL.RuleProperty(
                name="RateLimitPerIp",
                priority=0,
                action=_block(429, "throttled"),
                statement=wafv2.CfnWebACL.StatementProperty(
                    rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                        limit=config.waf_rate_limit_per_5_minutes, aggregate_key_type="IP"
                    )
                ),
                visibility_config=_visibility("RateLimitPerIp"),
            )
        ]
        inspection_kb = next((kb for kb in INSPECTION_LIMITS_KB if kb * 1024 >= config.tuning.max_request_bytes), None)
        if inspection_kb is not None:
            # The whole allowed body fits the inspection window, so anything beyond it is too large.
            rules.append(
                wafv2.CfnWebACL.RuleProperty(
                    name="BodyTooLarge",
                    priority=1,
                    action=_block(413, "too_large"),
                    statement=wafv2.CfnWebACL.StatementProperty(
                        size_constraint_statement=wafv2.CfnWebACL.SizeConstraintStatementProperty(
                            field_to_match=wafv2.CfnWebACL.FieldToMatchProperty(
                                body=wafv2.CfnWebACL.BodyProperty(oversize_handling="MATCH")
                            ),
                            comparison_operator="GT",
                            size=config.tuning.max_request_bytes,
                            text_transformations=[wafv2.CfnWebACL.TextTransformationProperty(priority=0, type="NONE")],
                        )
                    ),
                    visibility_config=_visibility("BodyTooLarge"),
                )
            )
        rules.append(
            wafv2.CfnWebACL.RuleProperty(
                name="AWSManagedRulesCommonRuleSet",
                priority=2,
                override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
                statement=wafv2.CfnWebACL.StatementProperty(
                    managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                        vendor_name="AWS",
                        name="AWSManagedRulesCommonRuleSet",
                        rule_action_overrides=[
                            wafv2.CfnWebACL.RuleActionOverrideProperty(
                                name=name, action_to_use=wafv2.CfnWebACL.RuleActionProperty(count={})
                            )
                            for name in COUNTED_COMMON_RULES
                        ],
                    )
                ),
                visibility_config=_visibility("AWSManagedRulesCommonRuleSet"),
            )
        )
        message = {
            "throttled": "Too Many Requests",
            "too_large": f"request body is larger than {config.tuning.max_request_bytes} bytes: pass large inputs "
            "by reference (upload them to S3 and put the object's URI in the input)",
        }
        self.web_acl = wafv2.CfnWebACL(
            self,
            "WebAcl",
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            rules=rules,
            visibility_config=_visibility(f"{config.name.pascal}Api"),
            custom_response_bodies={
                key: wafv2.CfnWebACL.CustomResponseBodyProperty(
                    content_type="APPLICATION_JSON", content=json.dumps({"message": text})
                )
                for key, text in message.items()
            },
            association_config=wafv2.CfnWebACL.AssociationConfigProperty(
                request_body={
                    "API_GATEWAY": wafv2.CfnWebACL.RequestBodyAssociatedResourceTypeConfigProperty(
                        default_size_inspection_limit=f"KB_{inspection_kb or 16}"
                    )
                }
            ),
        )
        wafv2.CfnWebACLAssociation(self, "Association", resource_arn=stage.stage_arn, web_acl_arn=self.web_acl.attr_arn)
