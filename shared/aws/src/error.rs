//! One mapping from SDK failures to [`PortError`], shared by every service, so a caller
//! sees the same kind of error for the same kind of trouble whichever port it uses.

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use synth_core::PortError;

/// Error codes that mean "the request itself is wrong" across the five services.
const INVALID_CODES: &[&str] = &[
    "ValidationException",
    "ValidationError",
    "InvalidParameter",
    "InvalidParameterValue",
    "InvalidParameterException",
    "InvalidParameterValueException",
    "InvalidArgument",
    "InvalidRequest",
    "InvalidAttributeValue",
    "InvalidAttributeName",
    "InvalidMessageContents",
    "MissingParameter",
    "ReceiptHandleIsInvalid",
    "InvalidParameterCombination",
    "EntityTooLarge",
    "KeyTooLongError",
];

/// Error codes that mean "the service is there but will not serve now": retrying later helps.
const UNAVAILABLE_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "RequestThrottled",
    "RequestLimitExceeded",
    "ProvisionedThroughputExceededException",
    "SlowDown",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalServerError",
    "InternalError",
    "InternalFailure",
    "RequestTimeout",
    "RequestTimeoutException",
];

/// Map any SDK failure onto the port error; `op` names the operation for the message.
pub(crate) fn port_error<E>(op: &str, err: SdkError<E>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match &err {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => {
            return PortError::Unavailable(format!("{op}: {}", DisplayErrorContext(&err)));
        }
        SdkError::ConstructionFailure(_) => {
            return PortError::Invalid(format!("{op}: {}", DisplayErrorContext(&err)));
        }
        _ => {}
    }
    let code = err.code().unwrap_or_default();
    let status = err.raw_response().map(|r| r.status().as_u16());
    // Some answers (HEAD requests) carry no body, so no message: the code and status are
    // all there is, and the full error context would dump the raw response.
    let text = match (err.message(), code.is_empty()) {
        (Some(m), false) => format!("{op}: {code}: {m}"),
        (Some(m), true) => format!("{op}: {m}"),
        (None, false) => match status {
            Some(s) => format!("{op}: {code} (HTTP {s})"),
            None => format!("{op}: {code}"),
        },
        (None, true) => format!("{op}: {}", DisplayErrorContext(&err)),
    };
    if code == "ConditionalCheckFailedException" {
        PortError::ConditionFailed
    } else if INVALID_CODES.contains(&code) {
        PortError::Invalid(text)
    } else if UNAVAILABLE_CODES.contains(&code) || status.is_some_and(|s| s == 503 || s == 504) {
        PortError::Unavailable(text)
    } else {
        PortError::Backend(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::config::http::HttpResponse;
    use aws_sdk_dynamodb::error::{ConnectorError, ErrorMetadata};
    use aws_sdk_dynamodb::operation::get_item::GetItemError;
    use aws_sdk_s3::primitives::SdkBody;

    fn service(code: &str, status: u16) -> SdkError<GetItemError> {
        let meta = ErrorMetadata::builder().code(code).message("msg").build();
        let raw = HttpResponse::new(status.try_into().unwrap(), SdkBody::empty());
        SdkError::service_error(GetItemError::generic(meta), raw)
    }

    #[test]
    fn service_errors_map_by_code() {
        assert_eq!(
            port_error("Op", service("ConditionalCheckFailedException", 400)),
            PortError::ConditionFailed
        );
        assert_eq!(
            port_error("Op", service("ValidationException", 400)),
            PortError::Invalid("Op: ValidationException: msg".into())
        );
        assert!(matches!(
            port_error("Op", service("ThrottlingException", 400)),
            PortError::Unavailable(_)
        ));
        assert!(matches!(
            port_error("Op", service("Whatever", 503)),
            PortError::Unavailable(_)
        ));
        assert_eq!(
            port_error("Op", service("ResourceNotFoundException", 400)),
            PortError::Backend("Op: ResourceNotFoundException: msg".into())
        );
    }

    #[test]
    fn transport_failures_are_unavailable() {
        let io = SdkError::<GetItemError>::dispatch_failure(ConnectorError::io("refused".into()));
        assert!(matches!(port_error("Op", io), PortError::Unavailable(_)));
        let timeout = SdkError::<GetItemError>::timeout_error("slow");
        assert!(matches!(
            port_error("Op", timeout),
            PortError::Unavailable(_)
        ));
    }
}
