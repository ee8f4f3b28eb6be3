# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What an AWS error means for the operator, and which credential was used, in words (never a secret).

amazon.aws reports the error itself (``AnsibleAWSModule.fail_json_aws``: the AWS code and message, the response
metadata); this adds what it lacks: a hint per error code (``explain``) and the credential in use
(``module_credentials``, ``describe_credentials``). The ``ec2_gpu_*`` modules and the ``oceanid.fleet.fleet``
inventory use it.
"""

try:
    import boto3
    import botocore
    from botocore.exceptions import BotoCoreError, ClientError
except ImportError:
    HAS_BOTO3 = False  # the modules report it through AnsibleAWSModule, the inventory through _ec2_client
else:
    HAS_BOTO3 = True

# botocore's names for where credentials came from, in words
_CREDENTIAL_METHODS = {
    "explicit": "the access_key/secret_key options",
    "env": "environment variables",
    "shared-credentials-file": "the shared credentials file",
    "config-file": "the AWS config file",
    "custom-process": "a credential_process",
    "assume-role": "an assumed role (AWS config file)",
    "assume-role-with-web-identity": "a web identity token",
    "sso": "AWS IAM Identity Center (SSO)",
    "container-role": "the container role",
    "iam-role": "the instance role (instance metadata)",
    "boto-config": "a boto2 config file",
}

# error codes and what they usually mean for the operator
HINTS = {
    "AuthFailure": "the credentials were rejected (wrong or deactivated access key)",
    "UnrecognizedClientException": "the credentials were rejected (unknown access key)",
    "InvalidClientTokenId": "the credentials were rejected (unknown access key)",
    "SignatureDoesNotMatch": "the secret key does not match the access key",
    "ExpiredToken": "the session token has expired; renew it",
    "RequestExpired": "the request expired; is this machine's clock right?",
    "UnauthorizedOperation": "the credentials lack an IAM permission for this call",
    "AccessDenied": "the credentials lack an IAM permission for this call",
    "OptInRequired": "the account is not subscribed to this service or region",
    "InvalidAMIID.NotFound": "the AMI does not exist in this region",
    "InvalidSubnetID.NotFound": "the subnet does not exist in this region",
    "InvalidGroup.NotFound": "a security group does not exist in this VPC",
    "InvalidKeyPair.NotFound": "the key pair does not exist in this region",
    "InsufficientInstanceCapacity": "AWS has no capacity for this instance type in this Availability Zone right now",
    "Unsupported": "this instance type is not offered in this Availability Zone",
}


def describe_credentials(session, profile=None):
    """Which credential a session uses, in words, without the secret: for error messages.

    Resolving credentials can query the instance metadata service; call this on error paths only.
    """
    where = "profile '%s'" % profile if profile else None
    try:
        credentials = session.get_credentials()
    except Exception as exc:  # pylint: disable=broad-except
        return "%s (unusable: %s)" % (where or "the default credential chain", exc)
    if credentials is None:
        return "no credentials found (%s, environment, shared files, instance role)" % (where or "no profile set")
    key = credentials.access_key or ""
    masked = "****" + key[-4:] if len(key) > 4 else "****"
    method = _CREDENTIAL_METHODS.get(credentials.method, credentials.method or "an unknown source")
    text = "access key %s from %s" % (masked, method)
    if where:
        text += " (%s)" % where
    return text


def module_credentials(module):
    """``describe_credentials`` for an AnsibleAWSModule, from its access_key/secret_key/session_token/profile."""
    params = module.params
    try:
        session = boto3.session.Session(
            profile_name=None if params.get("access_key") else params.get("profile") or None,
            aws_access_key_id=params.get("access_key") or None,
            aws_secret_access_key=params.get("secret_key") or None,
            aws_session_token=params.get("session_token") or None,
        )
    except Exception as exc:  # pylint: disable=broad-except
        return "unusable: %s" % exc
    return describe_credentials(session, params.get("profile"))


def error_code(exc):
    """The AWS error code of a ClientError (``InsufficientInstanceCapacity``, ...), else None."""
    if HAS_BOTO3 and isinstance(exc, ClientError):
        return exc.response.get("Error", {}).get("Code")
    return None


def explain(msg, exc):
    """``msg`` with the hint for the exception's error code, if there is one: for ``fail_json_aws(exc, msg=...)``."""
    hint = HINTS.get(error_code(exc))
    return "%s (%s)" % (msg, hint) if hint else msg


def error_reason(exc):
    """Why a call failed, in one line: the AWS code and message, or the client-side error, plus a hint."""
    code = error_code(exc)
    if code is not None:
        message = exc.response.get("Error", {}).get("Message") or ""
        return explain("%s: %s" % (code, message) if message else code, exc)
    if HAS_BOTO3:
        if isinstance(exc, botocore.exceptions.NoCredentialsError):
            return "no AWS credentials found (options, environment, shared files, instance role)"
        if isinstance(exc, botocore.exceptions.ProfileNotFound):
            return str(exc)
        if isinstance(exc, (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectTimeoutError)):
            return "cannot reach the EC2 endpoint: %s" % exc
        if isinstance(exc, botocore.exceptions.ReadTimeoutError):
            return "the EC2 endpoint did not answer in time: %s" % exc
        if isinstance(exc, BotoCoreError):
            return "%s: %s" % (type(exc).__name__, exc)
    return "%s: %s" % (type(exc).__name__, exc)
