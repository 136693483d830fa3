//! `--server URL`: `isovec index`, `search`, `get` and `delete` against the store an `isovec
//! serve` process owns, through its HTTP API (the requests of [`crate::api`]); they print what
//! the same commands print on a store directory.

use std::path::Path;

use anyhow::Context;
use serde_json::{json, Value};

use super::store_cmds::{hits_table, DocLines, IndexArgs, QueryVectorArgs, SearchArgs, TargetArgs};
use crate::api::{DeleteRequest, GetRequest, GetResult, QueryRequest, QueryResult, Where, WriteRequest};
use crate::store::{Fusion, Hit};

/// A client of one server.
pub struct Remote {
    url: String,
    token: Option<String>,
    agent: ureq::Agent,
}

/// `url` checked as the address of a server, `http://HOST[:PORT][/PATH]`, without its trailing
/// `/`: a malformed one is an error that says what to give, not "no answer".
fn server_url(url: &str) -> anyhow::Result<String> {
    const EXAMPLE: &str = "give e.g. --server http://127.0.0.1:8750";
    let Some(rest) = url.strip_prefix("http://") else {
        if url.starts_with("https://") {
            anyhow::bail!(
                "--server {url}: the CLI speaks plain HTTP (no TLS); reach the server over http://, \
                 e.g. on loopback or through an SSH tunnel"
            );
        }
        anyhow::bail!("--server {url:?} is not an http:// address; {EXAMPLE}");
    };
    let authority = rest.split('/').next().unwrap_or("");
    let (host, port) = match authority.rsplit_once(':') {
        // An IPv6 address in brackets has colons of its own.
        Some((host, port)) if !port.contains(']') => (host, Some(port)),
        _ => (authority, None),
    };
    let host_ok = match host.strip_prefix('[') {
        Some(v6) => v6.strip_suffix(']').is_some_and(|a| a.parse::<std::net::Ipv6Addr>().is_ok()),
        None => !host.is_empty() && !host.contains(['[', ']', '@', ' ']),
    };
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p > 0));
    if !host_ok || !port_ok {
        anyhow::bail!("--server {url:?} is not a valid server address; {EXAMPLE}");
    }
    Ok(url.trim_end_matches('/').to_string())
}

impl Remote {
    /// The server `target` names, if it names one.
    pub fn of(target: &TargetArgs) -> anyhow::Result<Option<Remote>> {
        let Some(url) = &target.server else { return Ok(None) };
        let token = match &target.token_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .with_context(|| format!("reading the token file {}", path.display()))?
                    .trim()
                    .to_string(),
            ),
            None => None,
        };
        let agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        Ok(Some(Remote { url: server_url(url)?, token, agent }))
    }

    /// Sends `body` (JSON) to `path`; the JSON answer, or the server's error message.
    pub fn call(&self, method: &str, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.url);
        let auth = self.token.as_ref().map(|t| format!("Bearer {t}"));
        let sent = match (method, body) {
            ("GET", _) => {
                let mut r = self.agent.get(&url);
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                r.call()
            }
            (_, body) => {
                let mut r = self.agent.post(&url);
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                r.send_json(body.unwrap_or(&json!({})))
            }
        };
        let mut response = sent
            .with_context(|| format!("no answer from the isovec server at {}; is `isovec serve` running?", self.url))?;
        let status = response.status();
        let answer: Value = response.body_mut().read_json().with_context(|| format!("reading the answer of {url}"))?;
        if !status.is_success() {
            let message = answer["error"]["message"].as_str().map_or_else(|| answer.to_string(), str::to_string);
            anyhow::bail!("the server answered {status}: {message}");
        }
        Ok(answer)
    }

    fn collection_path(name: &str) -> String {
        let mut quoted = String::new();
        for b in name.bytes() {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                quoted.push(b as char);
            } else {
                quoted.push_str(&format!("%{b:02X}"));
            }
        }
        format!("/collections/{quoted}")
    }
}

/// `isovec index --server`: the file's documents upserted in batches (the server's collection
/// encodes them with its recorded pipeline; a new one is made for the default pipeline).
pub fn index(remote: &Remote, args: &IndexArgs) -> anyhow::Result<()> {
    if args.passages {
        anyhow::bail!(
            "--passages is not available through a server; index on the server's machine while it is stopped"
        );
    }
    let name = &args.target.collection;
    remote.call("POST", "/collections", Some(&json!({"name": name, "get_or_create": true})))?;
    let path = format!("{}/upsert", Remote::collection_path(name));
    let mut lines = DocLines::open(args)?;
    let (mut inserted, mut replaced) = (0usize, 0usize);
    let mut done = false;
    while !done {
        let (mut ids, mut texts, mut metadata) = (Vec::new(), Vec::new(), Vec::new());
        while ids.len() < args.batch.max(1) {
            match lines.next()? {
                None => {
                    done = true;
                    break;
                }
                Some(Ok(doc)) => {
                    ids.push(doc.id);
                    texts.push(Some(doc.text));
                    metadata.push(Some(doc.metadata));
                }
                Some(Err(m)) => anyhow::bail!(
                    "{}:{}: {m}\n(indexing stopped; {} documents before this line's batch were written)",
                    args.file.display(),
                    lines.line_no,
                    inserted + replaced
                ),
            }
        }
        if ids.is_empty() {
            break;
        }
        let batch = WriteRequest { ids, documents: Some(texts), embeddings: None, metadatas: Some(metadata) };
        let counts = remote.call("POST", &path, Some(&serde_json::to_value(&batch)?))?;
        inserted += counts["inserted"].as_u64().unwrap_or(0) as usize;
        replaced += counts["replaced"].as_u64().unwrap_or(0) as usize;
    }
    eprintln!(
        "indexed {} documents into {}/{name} ({inserted} new, {replaced} replaced)",
        inserted + replaced,
        remote.url
    );
    Ok(())
}

/// `isovec search --server`.
pub fn search(remote: &Remote, args: &SearchArgs, query_vector: &QueryVectorArgs) -> anyhow::Result<()> {
    let query = args.query.join(" ");
    let vector = query_vector.query_vector.as_deref().map(super::npy::query_vector).transpose()?;
    let fusion = args.fusion()?;
    let req = QueryRequest {
        query_texts: (!query.trim().is_empty() || vector.is_none()).then(|| vec![query]),
        query_embeddings: vector.map(|v| vec![v]),
        n_results: args.k,
        filter: args.filter.clone().map(Where::Expression),
        mode: args.mode.clone(),
        fusion: match fusion {
            Fusion::Auto => Some("auto".to_string()),
            _ => Some(args.fusion.clone()),
        }
        .filter(|_| args.mode == "hybrid"),
        alpha: match fusion {
            Fusion::Convex { alpha } if args.alpha.is_some() => Some(alpha),
            _ => None,
        },
        depth: args.depth,
        ef: args.ef,
        ..QueryRequest::default()
    };
    let path = format!("{}/query", Remote::collection_path(&args.target.collection));
    let result: QueryResult =
        serde_json::from_value(remote.call("POST", &path, Some(&serde_json::to_value(&req)?))?)?;
    let hits: Vec<Hit> = first_hits(result);
    if args.json {
        for h in &hits {
            println!("{}", json!({"id": h.id, "score": h.score, "text": h.text, "metadata": h.metadata}));
        }
    } else {
        print!("{}", hits_table(&hits));
    }
    Ok(())
}

fn first_hits(r: QueryResult) -> Vec<Hit> {
    let ids = r.ids.into_iter().next().unwrap_or_default();
    let scores = r.scores.and_then(|s| s.into_iter().next()).unwrap_or_default();
    let texts = r.documents.and_then(|d| d.into_iter().next()).unwrap_or_default();
    let metadata = r.metadatas.and_then(|m| m.into_iter().next()).unwrap_or_default();
    ids.into_iter()
        .zip(scores)
        .zip(texts)
        .zip(metadata)
        .map(|(((id, score), text), metadata)| Hit { id, score, text, metadata })
        .collect()
}

/// `isovec delete --server`.
pub fn delete(remote: &Remote, target: &TargetArgs, ids: &[String]) -> anyhow::Result<usize> {
    let req = DeleteRequest { ids: Some(ids.to_vec()), filter: None };
    let path = format!("{}/delete", Remote::collection_path(&target.collection));
    let answer = remote.call("POST", &path, Some(&serde_json::to_value(&req)?))?;
    Ok(answer["deleted"].as_u64().unwrap_or(0) as usize)
}

/// `isovec get --server`: every page of the answer.
pub fn get(remote: &Remote, target: &TargetArgs, mut req: GetRequest) -> anyhow::Result<GetResult> {
    let path = format!("{}/get", Remote::collection_path(&target.collection));
    let (mut ids, mut texts, mut metadata) = (Vec::new(), Vec::new(), Vec::new());
    let wanted = req.limit;
    loop {
        if let Some(limit) = wanted {
            req.limit = Some(limit - ids.len());
        }
        let page: GetResult =
            serde_json::from_value(remote.call("POST", &path, Some(&serde_json::to_value(&req)?))?)?;
        let got = page.ids.len();
        ids.extend(page.ids);
        texts.extend(page.documents.unwrap_or_default());
        metadata.extend(page.metadatas.unwrap_or_default());
        req.offset += got;
        if req.ids.is_some() || got == 0 || wanted.is_some_and(|w| ids.len() >= w) {
            return Ok(GetResult { ids, documents: Some(texts), metadatas: Some(metadata), embeddings: None });
        }
    }
}

/// A path given where only a server is.
pub fn no_path_over_http(what: &str, path: &Path) -> anyhow::Error {
    anyhow::anyhow!(
        "{what} {} names a file, which no request to a server may carry; run the command on the server's machine \
         while it is stopped, or leave the option out",
        path.display()
    )
}

#[cfg(test)]
mod tests {
    use super::server_url;

    #[test]
    fn server_addresses_are_checked_before_any_request() {
        for good in ["http://127.0.0.1:8750", "http://localhost:8750/", "http://[::1]:8750", "http://host/prefix"] {
            assert!(server_url(good).is_ok(), "{good}");
        }
        assert_eq!(server_url("http://h:1/").unwrap(), "http://h:1");
        for bad in
            ["localhost:8750", "ftp://h", "http://", "http://[::1", "http://h:99999", "http://h:port", "http://:80"]
        {
            let e = server_url(bad).expect_err(bad).to_string();
            assert!(e.contains("http://127.0.0.1:8750"), "{bad}: {e}");
        }
        assert!(server_url("https://h:1").unwrap_err().to_string().contains("no TLS"));
    }
}
