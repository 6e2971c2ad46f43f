//! What the handlers' annotations cannot say: the answers every operation can give whatever
//! its handler (the extractors and middleware give them), and the links between operations
//! that let a client, or a stateful test, chain create → read → change → delete.
//!
//! Applied to the generated document once, in [`crate::openapi`], so the document states
//! exactly what the shared layers do rather than each handler restating it.

use std::collections::BTreeMap;

use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::{OpenApi, Ref, RefOr};

/// The error answers of the shared layers, and when each can occur.
const COMMON: [(&str, &str, When); 8] = [
    (
        "400",
        "Invalid parameters or body (the envelope's `details` names the field at fault)",
        When::HasInput,
    ),
    (
        "401",
        "Missing, invalid or expired access token",
        When::Secured,
    ),
    ("403", "Not an administrator", When::AdminOnly),
    (
        "404",
        "No such resource of the caller",
        When::HasPathParameter,
    ),
    (
        "413",
        "Request body larger than MAX_REQUEST_SIZE_MB",
        When::HasBody,
    ),
    (
        "415",
        "The body is not of the documented content type",
        When::HasBody,
    ),
    (
        "429",
        "Too many requests from this client; Retry-After says when to try again",
        When::Throttled,
    ),
    (
        "503",
        "A backing store is unavailable; retry later",
        When::Always,
    ),
];

#[derive(Clone, Copy)]
enum When {
    Always,
    HasInput,
    HasBody,
    HasPathParameter,
    Secured,
    AdminOnly,
    Throttled,
}

/// Operations whose rate limit answers 429 (see `accounts::login`).
const THROTTLED: [&str; 2] = ["login", "register"];

/// Links from a response to the operations its data feeds: (from operation, status, link
/// name, to operation, parameter, runtime expression).
const LINKS: &[(&str, &str, &str, &str, &str, &str)] = &[
    (
        "upload",
        "201",
        "GetDataset",
        "get_dataset",
        "id",
        "$response.body#/data/id",
    ),
    (
        "upload",
        "201",
        "PreviewDataset",
        "preview",
        "id",
        "$response.body#/data/id",
    ),
    (
        "upload",
        "201",
        "SetMetadata",
        "set_metadata",
        "id",
        "$response.body#/data/id",
    ),
    (
        "upload",
        "201",
        "DeleteDataset",
        "delete_dataset",
        "id",
        "$response.body#/data/id",
    ),
    (
        "presign",
        "201",
        "GetDataset",
        "get_dataset",
        "id",
        "$response.body#/data/dataset/id",
    ),
    (
        "presign",
        "201",
        "DeleteDataset",
        "delete_dataset",
        "id",
        "$response.body#/data/dataset/id",
    ),
    (
        "list",
        "200",
        "GetDataset",
        "get_dataset",
        "id",
        "$response.body#/data/items/0/id",
    ),
    (
        "get_dataset",
        "200",
        "PreviewDataset",
        "preview",
        "id",
        "$response.body#/data/id",
    ),
    (
        "get_dataset",
        "200",
        "DeleteDataset",
        "delete_dataset",
        "id",
        "$response.body#/data/id",
    ),
    (
        "register",
        "201",
        "ToggleUser",
        "toggle_user",
        "id",
        "$response.body#/data/id",
    ),
    (
        "register",
        "201",
        "SetRole",
        "set_role",
        "id",
        "$response.body#/data/id",
    ),
    (
        "list_users",
        "200",
        "ToggleUser",
        "toggle_user",
        "id",
        "$response.body#/data/items/0/id",
    ),
];

pub(crate) fn operations(doc: &mut OpenApi) -> impl Iterator<Item = &mut Operation> {
    doc.paths.paths.values_mut().flat_map(|item| {
        [
            item.get.as_mut(),
            item.put.as_mut(),
            item.post.as_mut(),
            item.delete.as_mut(),
            item.patch.as_mut(),
        ]
        .into_iter()
        .flatten()
    })
}

fn applies(op: &Operation, when: When) -> bool {
    let has = |place: ParameterIn| {
        op.parameters
            .iter()
            .flatten()
            .any(|p| p.parameter_in == place)
    };
    let id = op.operation_id.as_deref().unwrap_or_default();
    match when {
        When::Always => true,
        When::HasBody => op.request_body.is_some(),
        When::HasInput => {
            op.request_body.is_some() || op.parameters.iter().flatten().next().is_some()
        }
        When::HasPathParameter => has(ParameterIn::Path),
        When::Secured => op.security.as_ref().is_some_and(|s| !s.is_empty()),
        When::AdminOnly => op
            .security
            .as_ref()
            .is_some_and(|s| s.contains(&crate::routes::bearer(&[crate::routes::ADMIN_ROLE]))),
        When::Throttled => THROTTLED.contains(&id),
    }
}

/// Add the shared layers' answers and the links between operations to `doc`.
pub(crate) fn complete(doc: &mut OpenApi) {
    let failure = || {
        ContentBuilder::new()
            .schema(Some(RefOr::Ref(Ref::from_schema_name("Failure"))))
            .build()
    };
    for op in operations(doc) {
        for (status, description, when) in COMMON {
            if applies(op, when) && !op.responses.responses.contains_key(status) {
                let response = ResponseBuilder::new()
                    .description(description)
                    .content("application/json", failure())
                    .build();
                op.responses
                    .responses
                    .insert(status.to_owned(), RefOr::T(response));
            }
        }
    }
    let mut by_op: BTreeMap<(&str, &str), Vec<_>> = BTreeMap::new();
    for &(from, status, name, to, param, expr) in LINKS {
        by_op
            .entry((from, status))
            .or_default()
            .push((name, to, param, expr));
    }
    for op in operations(doc) {
        let id = op.operation_id.clone().unwrap_or_default();
        for (status, response) in op.responses.responses.iter_mut() {
            let (Some(links), RefOr::T(response)) =
                (by_op.get(&(id.as_str(), status.as_str())), response)
            else {
                continue;
            };
            // utoipa 5.5 writes a `Link`'s fields in snake case (`operation_id`), which no
            // OpenAPI tool reads, so the links go out as plain JSON under `links`.
            let mut object = serde_json::Map::new();
            for &(name, to, param, expr) in links {
                object.insert(
                    name.to_owned(),
                    serde_json::json!({ "operationId": to, "parameters": { param: expr } }),
                );
            }
            let extra = Extensions::from_iter([("links", serde_json::Value::Object(object))]);
            match &mut response.extensions {
                Some(e) => e.merge(extra),
                None => response.extensions = Some(extra),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_link_joins_two_documented_operations_and_common_answers_are_added() {
        let mut doc = crate::openapi();
        let ids: Vec<String> = operations(&mut doc)
            .filter_map(|op| op.operation_id.clone())
            .collect();
        for &(from, _, _, to, _, _) in LINKS {
            assert!(ids.iter().any(|i| i == from), "no operation {from}");
            assert!(ids.iter().any(|i| i == to), "no operation {to}");
        }
        let json = serde_json::to_value(&doc).unwrap();
        let upload = &json["paths"]["/upload/dataset"]["post"]["responses"];
        assert_eq!(
            upload["201"]["links"]["GetDataset"]["parameters"]["id"],
            "$response.body#/data/id"
        );
        for status in ["400", "401", "413", "415", "503"] {
            assert!(upload[status].is_object(), "{status}: {upload}");
        }
        let health = &json["paths"]["/health"]["get"]["responses"];
        assert!(health["401"].is_null(), "public routes answer no 401");
        assert!(json["paths"]["/auth/login"]["post"]["responses"]["429"].is_object());

        // Administrators' operations need the admin role, and only they answer 403.
        let mut admin_only = Vec::new();
        for (path, item) in json["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let admin = op["security"] == serde_json::json!([{ "bearer": ["admin"] }]);
                assert_eq!(op["responses"]["403"].is_object(), admin, "{method} {path}");
                if admin {
                    admin_only.push(format!("{method} {path}"));
                }
            }
        }
        admin_only.sort();
        assert_eq!(
            admin_only,
            [
                "get /admin/logs",
                "get /admin/requests",
                "get /admin/users",
                "get /stats/performance",
                "get /stats/system",
                "post /admin/approve/{id}",
                "post /admin/reject/{id}",
                "post /admin/users/{id}/toggle",
                "put /admin/users/{id}/role",
            ]
        );
    }
}
