/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_cfn_xml: the CloudFormation client's parsers on answers shaped like
 * CloudFormation's own (ErrorResponse, CreateStack, DescribeStacks,
 * DescribeStackEvents), and the status helpers. No network.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cfn.h"

#define NS "xmlns=\"http://cloudformation.amazonaws.com/doc/2010-05-15/\""

static void parse_err(const char *xml, long status, struct cfn_error *e)
{
	cfn_parse_error(xml, strlen(xml), status, e);
}

static void test_error_not_found(void **state)
{
	struct cfn_error e;

	parse_err("<ErrorResponse " NS "><Error><Type>Sender</Type><Code>ValidationError</Code>"
	          "<Message>Stack with id hpc-1 does not exist</Message></Error>"
	          "<RequestId>a1b2</RequestId></ErrorResponse>",
	          400, &e);
	assert_int_equal(e.err, CFN_ERR_NOT_FOUND);
	assert_string_equal(e.code, "ValidationError");
	assert_string_equal(e.message, "Stack with id hpc-1 does not exist");
	assert_string_equal(e.request_id, "a1b2");
	assert_int_equal(e.http_status, 400);
}

static void test_error_codes(void **state)
{
	struct cfn_error e;
	char buf[512];

	parse_err("<ErrorResponse><Error><Code>Throttling</Code><Message>Rate exceeded</Message>"
	          "</Error><RequestId>r</RequestId></ErrorResponse>",
	          400, &e);
	assert_int_equal(e.err, CFN_ERR_THROTTLED);
	parse_err("<ErrorResponse><Error><Code>AlreadyExistsException</Code><Message>Stack [a] "
	          "already exists</Message></Error></ErrorResponse>",
	          400, &e);
	assert_int_equal(e.err, CFN_ERR_ALREADY_EXISTS);
	parse_err("<ErrorResponse><Error><Code>ValidationError</Code><Message>Parameters: [RunId] "
	          "must have values</Message></Error></ErrorResponse>",
	          400, &e);
	assert_int_equal(e.err, CFN_ERR_VALIDATION);
	parse_err("<ErrorResponse><Error><Code>InsufficientCapabilitiesException</Code><Message>"
	          "Requires capabilities : [CAPABILITY_IAM]</Message></Error></ErrorResponse>",
	          400, &e);
	assert_int_equal(e.err, CFN_ERR_CAPABILITIES);
	parse_err("<ErrorResponse><Error><Code>SignatureDoesNotMatch</Code><Message>m</Message>"
	          "</Error></ErrorResponse>",
	          403, &e);
	assert_int_equal(e.err, CFN_ERR_AUTH);
	parse_err("<ErrorResponse><Error><Code>AccessDenied</Code><Message>not authorized to "
	          "perform: cloudformation:CreateStack</Message></Error></ErrorResponse>",
	          403, &e);
	assert_int_equal(e.err, CFN_ERR_ACCESS_DENIED);
	assert_non_null(strstr(
	    cfn_error_format(&e, buf, sizeof(buf)),
	    "AccessDenied: not authorized to perform: cloudformation:CreateStack (HTTP 403)"));
	parse_err("<ErrorResponse><Error><Code>InternalFailure</Code><Message>x</Message></Error>"
	          "</ErrorResponse>",
	          503, &e);
	assert_int_equal(e.err, CFN_ERR_SERVER);
	parse_err("<ErrorResponse><Error><Code>SomethingNew</Code><Message>x</Message></Error>"
	          "</ErrorResponse>",
	          400, &e);
	assert_int_equal(e.err, CFN_ERR_OTHER);
	assert_string_equal(e.code, "SomethingNew");
}

static void test_error_not_xml(void **state)
{
	struct cfn_error e;

	parse_err("<html><body>Bad Gateway</body></html>", 502, &e);
	assert_int_equal(e.err, CFN_ERR_SERVER);
	assert_non_null(strstr(e.message, "is the endpoint a CloudFormation endpoint?"));
	parse_err("not xml at all", 404, &e);
	assert_int_equal(e.err, CFN_ERR_PROTOCOL);
	cfn_parse_error(NULL, 0, 400, &e);
	assert_int_equal(e.err, CFN_ERR_PROTOCOL);
}

static void test_create(void **state)
{
	const char *ok = "<CreateStackResponse " NS "><CreateStackResult><StackId>"
	                 "arn:aws:cloudformation:us-east-1:123456789012:stack/hpc/4a1b</StackId>"
	                 "</CreateStackResult><ResponseMetadata><RequestId>x</RequestId>"
	                 "</ResponseMetadata></CreateStackResponse>";
	const char *none = "<CreateStackResponse><CreateStackResult/></CreateStackResponse>";
	char *id;

	id = cfn_parse_create(ok, strlen(ok));
	assert_string_equal(id, "arn:aws:cloudformation:us-east-1:123456789012:stack/hpc/4a1b");
	free(id);
	assert_null(cfn_parse_create(none, strlen(none)));
	assert_null(cfn_parse_create("<x", 2));
}

static void test_stack(void **state)
{
	const char *xml =
	    "<DescribeStacksResponse " NS "><DescribeStacksResult><Stacks><member>"
	    "<StackName>c-hpc</StackName><StackId>arn:aws:cloudformation:us-east-1:1:stack/c-hpc/"
	    "9</StackId>"
	    "<CreationTime>2026-11-26T23:40:01.123Z</CreationTime>"
	    "<StackStatus>ROLLBACK_COMPLETE</StackStatus>"
	    "<StackStatusReason>The following resource(s) failed to create: [HeadNode]. "
	    "</StackStatusReason>"
	    "<Parameters><member><ParameterKey>RunId</ParameterKey><ParameterValue>r1</"
	    "ParameterValue></member></Parameters>"
	    "<Outputs><member><OutputKey>ClusterName</OutputKey><OutputValue>c-hpc</OutputValue></"
	    "member>"
	    "<member><OutputKey>TerminationRoleArn</OutputKey><OutputValue>arn:aws:iam::1:role/t</"
	    "OutputValue></member></Outputs>"
	    "<ParentId>arn:aws:cloudformation:us-east-1:1:stack/hpc/1</ParentId>"
	    "</member></Stacks></DescribeStacksResult></DescribeStacksResponse>";
	struct cfn_stack s;

	assert_int_equal(cfn_parse_stack(xml, strlen(xml), &s), 0);
	assert_string_equal(s.name, "c-hpc");
	assert_string_equal(s.status, "ROLLBACK_COMPLETE");
	assert_string_equal(s.status_reason,
	                    "The following resource(s) failed to create: [HeadNode]. ");
	assert_string_equal(s.parent_id, "arn:aws:cloudformation:us-east-1:1:stack/hpc/1");
	assert_int_equal(s.creation_time, 1795736401);
	assert_int_equal(s.n_outputs, 2);
	assert_string_equal(cfn_stack_output(&s, "TerminationRoleArn"), "arn:aws:iam::1:role/t");
	assert_null(cfn_stack_output(&s, "Nope"));
	assert_int_equal(s.deletion_time, 0);
	cfn_stack_clear(&s);
	cfn_stack_clear(&s);

	const char *empty = "<DescribeStacksResponse><DescribeStacksResult><Stacks/>"
	                    "</DescribeStacksResult></DescribeStacksResponse>";
	assert_int_equal(cfn_parse_stack(empty, strlen(empty), &s), -1);
	assert_null(s.name);
}

static void test_events(void **state)
{
	const char *xml =
	    "<DescribeStackEventsResponse " NS "><DescribeStackEventsResult><StackEvents>"
	    "<member><StackId>S</StackId><EventId>e2</EventId><StackName>hpc</StackName>"
	    "<LogicalResourceId>PclusterCluster</LogicalResourceId>"
	    "<PhysicalResourceId>arn:aws:cloudformation:us-east-1:1:stack/c-hpc/9</"
	    "PhysicalResourceId>"
	    "<ResourceType>Custom::PclusterCluster</ResourceType>"
	    "<Timestamp>2026-11-26T23:40:02.5Z</Timestamp><ResourceStatus>CREATE_FAILED</"
	    "ResourceStatus>"
	    "<ResourceStatusReason>Cluster creation failed &amp; rolled "
	    "back</ResourceStatusReason></member>"
	    "<member><StackId>S</StackId><EventId>e1</EventId><StackName>hpc</StackName>"
	    "<LogicalResourceId>hpc</LogicalResourceId><ResourceType>AWS::CloudFormation::Stack</"
	    "ResourceType>"
	    "<Timestamp>2026-11-26T23:40:01Z</Timestamp><ResourceStatus>CREATE_IN_PROGRESS</"
	    "ResourceStatus></member>"
	    "</StackEvents><NextToken>tok-2</NextToken></DescribeStackEventsResult></"
	    "DescribeStackEventsResponse>";
	struct cfn_events p;

	assert_int_equal(cfn_parse_events(xml, strlen(xml), &p), 0);
	assert_int_equal(p.n, 2);
	assert_string_equal(p.next_token, "tok-2");
	assert_string_equal(p.events[0].event_id, "e2");
	assert_string_equal(p.events[0].logical_id, "PclusterCluster");
	assert_string_equal(p.events[0].status, "CREATE_FAILED");
	assert_string_equal(p.events[0].reason, "Cluster creation failed & rolled back");
	assert_string_equal(p.events[0].resource_type, "Custom::PclusterCluster");
	assert_int_equal(p.events[0].timestamp, 1795736402);
	assert_int_equal(p.events[0].timestamp_ms, 500);
	assert_null(p.events[1].reason);
	assert_null(p.events[1].physical_id);
	cfn_events_free(&p);

	const char *last = "<DescribeStackEventsResponse><DescribeStackEventsResult><StackEvents/>"
	                   "</DescribeStackEventsResult></DescribeStackEventsResponse>";
	assert_int_equal(cfn_parse_events(last, strlen(last), &p), 0);
	assert_int_equal(p.n, 0);
	assert_null(p.next_token);
	cfn_events_free(&p);

	const char *broken = "<DescribeStackEventsResponse><DescribeStackEventsResult><StackEvents>"
	                     "<member><EventId>e</EventId></member></StackEvents>"
	                     "</DescribeStackEventsResult></DescribeStackEventsResponse>";
	assert_int_equal(cfn_parse_events(broken, strlen(broken), &p), -1);
	assert_int_equal(cfn_parse_events("<a>", 3, &p), -1);
}

static void test_status_helpers(void **state)
{
	assert_true(cfn_status_is_failed("CREATE_FAILED"));
	assert_true(cfn_status_is_failed("ROLLBACK_COMPLETE"));
	assert_true(cfn_status_is_failed("ROLLBACK_IN_PROGRESS"));
	assert_true(cfn_status_is_failed("DELETE_FAILED"));
	assert_false(cfn_status_is_failed("CREATE_COMPLETE"));
	assert_false(cfn_status_is_failed("DELETE_COMPLETE"));
	assert_false(cfn_status_is_failed(NULL));
	assert_true(cfn_status_is_terminal("CREATE_COMPLETE"));
	assert_false(cfn_status_is_terminal("DELETE_IN_PROGRESS"));
	assert_false(cfn_status_is_terminal("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"));
}

static void test_validate(void **state)
{
	struct cfn_template_info t;
	const char *xml =
	    "<ValidateTemplateResponse "
	    "xmlns=\"http://cloudformation.amazonaws.com/doc/2010-05-15/\">"
	    "<ValidateTemplateResult><Description>a cluster</Description>"
	    "<Parameters><member><ParameterKey>RunId</ParameterKey><NoEcho>false</NoEcho>"
	    "<Description>the run</Description></member>"
	    "<member><ParameterKey>MountDir</ParameterKey><DefaultValue>/ArtifactBucket"
	    "</DefaultValue><NoEcho>true</NoEcho></member>"
	    "<member><ParameterKey>KeyName</ParameterKey><DefaultValue></DefaultValue></member>"
	    "</Parameters><Capabilities><member>CAPABILITY_NAMED_IAM</member></Capabilities>"
	    "<CapabilitiesReason>The following resource(s) require capabilities: "
	    "[AWS::IAM::Role]</CapabilitiesReason></ValidateTemplateResult>"
	    "<ResponseMetadata><RequestId>r</RequestId></ResponseMetadata>"
	    "</ValidateTemplateResponse>";
	const char *none = "<ValidateTemplateResponse><ValidateTemplateResult><Parameters/>"
	                   "</ValidateTemplateResult></ValidateTemplateResponse>";

	assert_int_equal(cfn_parse_validate(xml, strlen(xml), &t), 0);
	assert_string_equal(t.description, "a cluster");
	assert_int_equal(t.n_params, 3);
	assert_string_equal(t.params[0].key, "RunId");
	assert_null(t.params[0].default_value); /* no Default: must be given */
	assert_false(t.params[0].no_echo);
	assert_string_equal(t.params[1].default_value, "/ArtifactBucket");
	assert_true(t.params[1].no_echo);
	assert_string_equal(t.params[2].default_value, ""); /* an empty Default is a default */
	assert_int_equal(t.n_capabilities, 1);
	assert_string_equal(t.capabilities[0], "CAPABILITY_NAMED_IAM");
	assert_non_null(strstr(t.capabilities_reason, "AWS::IAM::Role"));
	cfn_template_info_clear(&t);
	cfn_template_info_clear(&t);

	assert_int_equal(cfn_parse_validate(none, strlen(none), &t), 0);
	assert_int_equal(t.n_params, 0);
	assert_int_equal(t.n_capabilities, 0);
	assert_null(t.description);
	cfn_template_info_clear(&t);
	assert_int_equal(cfn_parse_validate("<a/>", 4, &t), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_error_not_found), cmocka_unit_test(test_error_codes),
	    cmocka_unit_test(test_error_not_xml),   cmocka_unit_test(test_create),
	    cmocka_unit_test(test_stack),           cmocka_unit_test(test_events),
	    cmocka_unit_test(test_status_helpers),  cmocka_unit_test(test_validate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
