//! A readable API page rendered on the server from the generated OpenAPI document, so it
//! needs no script, no CDN and nothing but this process (it also passes the strict CSP).

use serde_json::Value;

const METHODS: [&str; 7] = ["get", "post", "put", "patch", "delete", "head", "options"];

/// The stylesheet of the docs page, served at `/docs.css`.
pub const CSS: &str = "body{font-family:system-ui,sans-serif;max-width:960px;margin:2rem auto;\
padding:0 1rem;color:#1d2330}h1{margin-bottom:0}code,pre{font-family:ui-monospace,monospace}\
.op{border:1px solid #d0d7de;border-radius:6px;margin:1rem 0;padding:.5rem 1rem}\
.m{font-weight:700;text-transform:uppercase;display:inline-block;min-width:4.5rem}\
.get{color:#0a7d32}.post{color:#0b5cad}.put,.patch{color:#a35b00}.delete{color:#b3261e}\
.lock{font-size:.85em;color:#6a737d}pre{background:#f6f8fa;padding:.75rem;overflow:auto}\
table{border-collapse:collapse}td{padding:.1rem .6rem;vertical-align:top}";

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn schema_name(v: &Value) -> Option<String> {
    let r = v.pointer("/content/application~1json/schema")?;
    if let Some(s) = r.get("$ref").and_then(Value::as_str) {
        return Some(s.rsplit('/').next().unwrap_or(s).to_owned());
    }
    Some(r.to_string())
}

/// One operation: method, path, whether it needs a token, summary, body and answers.
fn operation(m: &str, path: &str, op: &Value) -> String {
    let summary = op.get("summary").and_then(Value::as_str).unwrap_or("");
    let secured = op
        .get("security")
        .and_then(Value::as_array)
        .is_some_and(|s| {
            s.iter()
                .any(|r| r.as_object().is_some_and(|o| !o.is_empty()))
        });
    let mut html = format!(
        "<div class=\"op\" id=\"{m}-{id}\"><span class=\"m {m}\">{m}</span> <code>{p}</code> {lock}<p>{s}</p>",
        id = esc(&path.replace('/', "-")),
        p = esc(path),
        lock = if secured {
            "<span class=\"lock\">bearer token required</span>"
        } else {
            ""
        },
        s = esc(summary),
    );
    if let Some(d) = op.get("description").and_then(Value::as_str) {
        html.push_str(&format!("<p>{}</p>", esc(d)));
    }
    if let Some(b) = op.get("requestBody").and_then(schema_name) {
        html.push_str(&format!("<p>Request body: <code>{}</code></p>", esc(&b)));
    }
    if let Some(rs) = op.get("responses").and_then(Value::as_object) {
        html.push_str("<table>");
        for (code, r) in rs {
            let desc = r.get("description").and_then(Value::as_str).unwrap_or("");
            let body = schema_name(r)
                .map(|b| format!(" <code>{}</code>", esc(&b)))
                .unwrap_or_default();
            html.push_str(&format!(
                "<tr><td>{}</td><td>{}{}</td></tr>",
                esc(code),
                esc(desc),
                body
            ));
        }
        html.push_str("</table>");
    }
    html.push_str("</div>");
    html
}

/// Render the document as one HTML page.
pub fn render(doc: &Value) -> String {
    let title = doc
        .pointer("/info/title")
        .and_then(Value::as_str)
        .unwrap_or("API");
    let version = doc
        .pointer("/info/version")
        .and_then(Value::as_str)
        .unwrap_or("");
    let mut html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\
         <link rel=\"stylesheet\" href=\"/docs.css\"></head><body><h1>{t}</h1>\
         <p>Version {v}. Machine-readable: <a href=\"/openapi.json\">/openapi.json</a> \
         (OpenAPI 3.1). Every answer is an envelope: <code>{{\"success\", \"data\", \
         \"message\", \"timestamp\"}}</code> or <code>{{\"success\": false, \"error\": \
         {{\"code\", \"message\", \"details\"}}, \"timestamp\"}}</code>.</p>",
        t = esc(title),
        v = esc(version)
    );
    if let Some(paths) = doc.get("paths").and_then(Value::as_object) {
        for (path, item) in paths {
            for m in METHODS {
                if let Some(op) = item.get(m) {
                    html.push_str(&operation(m, path, op));
                }
            }
        }
    }
    if let Some(schemas) = doc
        .pointer("/components/schemas")
        .and_then(Value::as_object)
    {
        html.push_str("<h2>Schemas</h2>");
        for (name, s) in schemas {
            let pretty = serde_json::to_string_pretty(s).unwrap_or_default();
            html.push_str(&format!(
                "<h3 id=\"schema-{n}\">{n}</h3><pre>{b}</pre>",
                n = esc(name),
                b = esc(&pretty)
            ));
        }
    }
    html.push_str("</body></html>");
    html
}
