//! The objects a Website owns (docs/contract.md#the-webhosting-operator-api): a ConfigMap with its
//! page and nginx config, a Deployment serving it, a Service and an Ingress. Pure builders of the
//! desired objects for server-side apply; they render the same content as the original, byte for
//! byte.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, KeyToPath, PodSpec,
    PodTemplateSpec, Service, ServicePort, ServiceSpec, Volume, VolumeMount,
};
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, ServiceBackendPort,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::Resource;
use sha2::{Digest, Sha256};

use crate::api::{LABEL_SKIP_WORKLOAD, Theme, Website};

/// Value of the `managed-by` label on every child.
const MANAGED_BY: &str = "webhosting-operator";
const PORT_NAME_HTTP: &str = "http";
const KEY_INDEX_HTML: &str = "index.html";
const KEY_NGINX_CONF: &str = "nginx.conf";
const IMAGE: &str = "nginx:1.29-alpine";
/// Pod template annotation whose change rolls the pods, so nginx serves the new content.
const ANNOTATION_CONFIG_MAP_CHECKSUM: &str = "checksum/configmap";
/// `0644`, the API server's default, set so that applying does not fight the defaulting.
const CONFIG_MAP_DEFAULT_MODE: i32 = 0o644;

/// The name of every child: `<website>-<first 6 hex chars of sha256(uid)>`. The UID keeps a
/// re-created Website of the same name from adopting the old one's children.
#[must_use]
pub fn child_name(website: &Website) -> String {
    let uid = website.metadata.uid.as_deref().unwrap_or_default();
    let digest = Sha256::digest(uid.as_bytes());
    format!("{}-{}", website_name(website), hex(&digest[..3]))
}

/// The labels of every child: the Website's labels (so its shard label carries over to the
/// children) plus the server labels, which win.
#[must_use]
pub fn child_labels(website: &Website, child_name: &str) -> BTreeMap<String, String> {
    let mut labels = website.metadata.labels.clone().unwrap_or_default();
    labels.extend(server_labels(website, child_name));
    labels
}

/// The ConfigMap holding the page, styled by `theme`, and the nginx config.
#[must_use]
pub fn config_map(website: &Website, theme: &Theme) -> ConfigMap {
    let name = child_name(website);
    let data = BTreeMap::from([
        (KEY_INDEX_HTML.to_owned(), index_html(website, theme, &name)),
        (KEY_NGINX_CONF.to_owned(), nginx_conf(website)),
    ]);
    ConfigMap {
        metadata: metadata(website, &name),
        data: Some(data),
        ..ConfigMap::default()
    }
}

/// The ClusterIP Service exposing the pods on port `http` (8080).
#[must_use]
pub fn service(website: &Website) -> Service {
    let name = child_name(website);
    Service {
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(server_labels(website, &name)),
            ports: Some(vec![ServicePort {
                name: Some(PORT_NAME_HTTP.into()),
                port: 8080,
                target_port: Some(IntOrString::String(PORT_NAME_HTTP.into())),
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        metadata: metadata(website, &name),
        status: None,
    }
}

/// The Ingress routing `/<namespace>/<name>` to the Service. A Website labelled
/// `skip-workload` gets the class `fake`, so no ingress controller carries load-test traffic.
#[must_use]
pub fn ingress(website: &Website) -> Ingress {
    let name = child_name(website);
    let path = HTTPIngressPath {
        path: Some(format!(
            "/{}/{}",
            website_namespace(website),
            website_name(website)
        )),
        path_type: "Prefix".into(),
        backend: IngressBackend {
            service: Some(IngressServiceBackend {
                name: name.clone(),
                port: Some(ServiceBackendPort {
                    name: Some(PORT_NAME_HTTP.into()),
                    number: None,
                }),
            }),
            resource: None,
        },
    };
    Ingress {
        spec: Some(IngressSpec {
            ingress_class_name: skip_workload(website).then(|| "fake".into()),
            rules: Some(vec![IngressRule {
                host: None,
                http: Some(HTTPIngressRuleValue { paths: vec![path] }),
            }]),
            ..IngressSpec::default()
        }),
        metadata: metadata(website, &name),
        status: None,
    }
}

/// The Deployment running nginx on the content of `config_map`. Its pods carry a checksum of
/// the ConfigMap data, so new content rolls them; a `skip-workload` Website gets no replicas.
#[must_use]
pub fn deployment(website: &Website, config_map: &ConfigMap) -> Deployment {
    let name = child_name(website);
    let config_map_name = config_map.metadata.name.clone().unwrap_or_default();
    let volume = |volume: &str, key: &str| Volume {
        name: volume.into(),
        config_map: Some(ConfigMapVolumeSource {
            name: config_map_name.clone(),
            items: Some(vec![KeyToPath {
                key: key.into(),
                path: key.into(),
                mode: None,
            }]),
            default_mode: Some(CONFIG_MAP_DEFAULT_MODE),
            optional: None,
        }),
        ..Volume::default()
    };
    let mount = |volume: &str, path: &str| VolumeMount {
        name: volume.into(),
        mount_path: path.into(),
        read_only: Some(true),
        ..VolumeMount::default()
    };
    let container = Container {
        name: "nginx".into(),
        image: Some(IMAGE.into()),
        image_pull_policy: Some("IfNotPresent".into()),
        // nginx.conf listens on 80; the Service maps its port 8080 to this port by name.
        ports: Some(vec![ContainerPort {
            name: Some(PORT_NAME_HTTP.into()),
            container_port: 80,
            protocol: Some("TCP".into()),
            ..ContainerPort::default()
        }]),
        volume_mounts: Some(vec![
            mount("website-data", "/usr/share/nginx/html"),
            mount("website-config", "/etc/nginx/conf.d"),
        ]),
        ..Container::default()
    };
    // The selector is immutable, so it uses the server labels only: the Website's labels
    // include the shard label, which changes when the Website moves to another shard.
    let selector = server_labels(website, &name);
    Deployment {
        spec: Some(DeploymentSpec {
            // One replica; none for a skip-workload Website.
            replicas: Some(i32::from(!skip_workload(website))),
            revision_history_limit: Some(2),
            selector: LabelSelector {
                match_labels: Some(selector.clone()),
                match_expressions: None,
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(selector),
                    annotations: Some(BTreeMap::from([(
                        ANNOTATION_CONFIG_MAP_CHECKSUM.to_owned(),
                        config_map_checksum(config_map),
                    )])),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![container],
                    volumes: Some(vec![
                        volume("website-data", KEY_INDEX_HTML),
                        volume("website-config", KEY_NGINX_CONF),
                    ]),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        metadata: metadata(website, &name),
        status: None,
    }
}

fn website_name(website: &Website) -> &str {
    website.metadata.name.as_deref().unwrap_or_default()
}

fn website_namespace(website: &Website) -> &str {
    website.metadata.namespace.as_deref().unwrap_or_default()
}

fn skip_workload(website: &Website) -> bool {
    website
        .metadata
        .labels
        .as_ref()
        .is_some_and(|labels| labels.contains_key(LABEL_SKIP_WORKLOAD))
}

/// The labels that select a Website's pods; stable for the Website's lifetime.
fn server_labels(website: &Website, child_name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app".to_owned(), "website".to_owned()),
        ("website".to_owned(), website_name(website).to_owned()),
        ("server".to_owned(), child_name.to_owned()),
        ("managed-by".to_owned(), MANAGED_BY.to_owned()),
    ])
}

fn metadata(website: &Website, child_name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(child_name.to_owned()),
        namespace: website.metadata.namespace.clone(),
        labels: Some(child_labels(website, child_name)),
        owner_references: Some(vec![OwnerReference {
            api_version: Website::api_version(&()).into_owned(),
            kind: Website::kind(&()).into_owned(),
            name: website_name(website).to_owned(),
            uid: website.metadata.uid.clone().unwrap_or_default(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }]),
        ..ObjectMeta::default()
    }
}

/// sha256 over the data as Go's `json.Marshal` writes it (keys sorted, `<`, `>`, `&`, U+2028
/// and U+2029 escaped), so the annotation equals the original's for the same content.
fn config_map_checksum(config_map: &ConfigMap) -> String {
    let json = serde_json::to_string(&config_map.data).expect("string maps serialize to JSON");
    let mut go_json = String::with_capacity(json.len());
    for c in json.chars() {
        // These characters only occur inside JSON strings, where an escape is equivalent.
        match c {
            '<' => go_json.push_str("\\u003c"),
            '>' => go_json.push_str("\\u003e"),
            '&' => go_json.push_str("\\u0026"),
            '\u{2028}' => go_json.push_str("\\u2028"),
            '\u{2029}' => go_json.push_str("\\u2029"),
            c => go_json.push(c),
        }
    }
    hex(&Sha256::digest(go_json.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    bytes
        .iter()
        .flat_map(|b| [DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 0xf)]])
        .map(char::from)
        .collect()
}

/// The original's `index.tmpl`, rendered by Go's `html/template`.
const INDEX_HTML: &str = r#"<html lang="en-US">
<head>
  <title>{{ .Website.Name }}</title>
  <style>
      body {
          background-color: {{ .Theme.Spec.Color }};
          font-family: {{ .Theme.Spec.FontFamily }}, Arial, sans-serif;
      }

      .box {
          background-color: #2D2D2D;
          margin: 30px auto auto;
          width: 50%;
          border: 10px solid cornflowerblue;
          padding: 20px;
      }

      h1 {
          text-align: center;
          color: coral;
          font-size: 50px;
      }

      p {
          color: white;
          font-size: 20px;
          font-family: "Source Code Pro", Menlo, Monaco, fixed-width, monospace;
      }

      a {
          color: cornflowerblue;
      }
  </style>
</head>
<body>
<div class="box">
  <h1>Welcome to {{ .Website.Name }}</h1>
  <p>Server name: {{ .ServerName }}</p>
  <p>This page is hosted on Kubernetes using
    <a target="_blank"
       href="https://github.com/timebertt/kubernetes-controller-sharding/tree/main/webhosting-operator">
      webhosting-operator</a>.
  </p>
</div>
</body>
</html>
"#;

/// The original's `nginx.conf.tmpl`, rendered by Go's `text/template` (no escaping).
const NGINX_CONF: &str = r"server {
    listen       80;
    listen  [::]:80;
    server_name  localhost;

    # rewrite /namespace/name to / for requests proxied from Ingress controller
    # this way, we don't need any Ingress controller specific configuration or objects
    rewrite ^/{{ .Website.ObjectMeta.Namespace }}/{{ .Website.ObjectMeta.Name }}(.*)$ /$1 last;
    location / {
        root   /usr/share/nginx/html;
        index  index.html;
    }
}
";

/// The page, escaped as `html/template` escapes it: names as HTML text, theme values as CSS
/// values (the theme is user input placed inside `<style>`).
fn index_html(website: &Website, theme: &Theme, child_name: &str) -> String {
    render(
        INDEX_HTML,
        &[
            (".Website.Name", escape_html(website_name(website)).as_str()),
            (".Theme.Spec.Color", css_value(&theme.spec.color).as_str()),
            (
                ".Theme.Spec.FontFamily",
                css_value(&theme.spec.font_family).as_str(),
            ),
            (".ServerName", escape_html(child_name).as_str()),
        ],
    )
}

fn nginx_conf(website: &Website) -> String {
    render(
        NGINX_CONF,
        &[
            (".Website.ObjectMeta.Namespace", website_namespace(website)),
            (".Website.ObjectMeta.Name", website_name(website)),
        ],
    )
}

/// Replaces each `{{ key }}` in one pass, so values are never scanned for actions.
fn render(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let (key, after) = rest[start + 2..]
            .split_once("}}")
            .expect("the templates close every action");
        let (_, value) = values
            .iter()
            .find(|(k, _)| *k == key.trim())
            .expect("the templates use known keys only");
        out.push_str(value);
        rest = after;
    }
    out.push_str(rest);
    out
}

/// Go `html/template`'s escaper for HTML text and RCDATA.
fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\0' => out.push('\u{FFFD}'),
            '"' => out.push_str("&#34;"),
            '&' => out.push_str("&amp;"),
            '\'' => out.push_str("&#39;"),
            '+' => out.push_str("&#43;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// Go `html/template`'s filter for CSS values: the value with CSS escapes decoded, or
/// `ZgotmplZ` if it could break out of the declaration or run script.
fn css_value(value: &str) -> String {
    const FAILSAFE: &str = "ZgotmplZ";
    let decoded = decode_css(value);
    let bytes = decoded.as_bytes();
    let mut ident = String::new();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            0 | b'"' | b'\'' | b'(' | b')' | b'/' | b';' | b'@' | b'[' | b'\\' | b']' | b'`'
            | b'{' | b'}' | b'<' | b'>' => return FAILSAFE.into(),
            // `--` could close an HTML comment (`-->`).
            b'-' if i > 0 && bytes[i - 1] == b'-' => return FAILSAFE.into(),
            b if b.is_ascii_alphanumeric() || b == b'_' => {
                ident.push(char::from(b.to_ascii_lowercase()));
            }
            _ => {}
        }
    }
    if ident.contains("expression") || ident.contains("mozbinding") {
        return FAILSAFE.into();
    }
    decoded
}

/// Decodes CSS escapes (`\` + 1–6 hex digits and an optional space, or `\` + a character).
fn decode_css(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let escaped = &rest[i + 1..];
        let hex_len = escaped
            .bytes()
            .take(6)
            .take_while(u8::is_ascii_hexdigit)
            .count();
        if hex_len > 0 {
            let mut len = hex_len;
            let mut code = u32::from_str_radix(&escaped[..len], 16).expect("hex digits");
            if code > u32::from(char::MAX) {
                // As Go: drop the last digit, which then stays as a literal.
                code /= 16;
                len -= 1;
            }
            out.push(char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER));
            rest = skip_css_space(&escaped[len..]);
        } else if let Some(c) = escaped.chars().next() {
            out.push(c);
            rest = &escaped[c.len_utf8()..];
        } else {
            // A trailing lone backslash is dropped.
            rest = "";
        }
    }
    out.push_str(rest);
    out
}

fn skip_css_space(s: &str) -> &str {
    s.strip_prefix("\r\n")
        .or_else(|| s.strip_prefix(['\t', '\n', '\x0c', '\r', ' ']))
        .unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::api::{ThemeSpec, WebsiteSpec};

    const UID: &str = "3f2b1c4e-8a1d-4b6e-9c0f-2d7e5a9b8c61";

    fn website(labels: &[(&str, &str)]) -> Website {
        let mut website = Website::new(
            "homepage",
            WebsiteSpec {
                theme: "exciting".into(),
            },
        );
        website.metadata.namespace = Some("project-foo".into());
        website.metadata.uid = Some(UID.into());
        website.metadata.labels = Some(
            labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        );
        website
    }

    fn theme(color: &str, font_family: &str) -> Theme {
        Theme::new(
            "exciting",
            ThemeSpec {
                color: color.into(),
                font_family: font_family.into(),
            },
        )
    }

    #[test]
    fn the_child_name_hashes_the_uid() {
        // printf %s "$UID" | sha256sum  ->  b2ef29b24cf1...
        assert_eq!(child_name(&website(&[])), "homepage-b2ef29");
    }

    #[test]
    fn children_carry_the_website_labels_and_the_server_labels() {
        let shard = "shard.alpha.sharding.timebertt.dev/webhosting-operator";
        let website = website(&[(shard, "shard-0"), ("app", "mine"), ("team", "a")]);
        let labels = child_labels(&website, "homepage-b2ef29");
        let expected: BTreeMap<String, String> = [
            (shard, "shard-0"),
            ("team", "a"),
            ("app", "website"),
            ("website", "homepage"),
            ("server", "homepage-b2ef29"),
            ("managed-by", "webhosting-operator"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(labels, expected);
    }

    #[test]
    fn every_child_is_named_labelled_and_controlled_by_the_website() {
        let website = website(&[("team", "a")]);
        let config_map = config_map(&website, &theme("teal", "Arial"));
        let children = [
            serde_json::to_value(&config_map).unwrap(),
            serde_json::to_value(service(&website)).unwrap(),
            serde_json::to_value(ingress(&website)).unwrap(),
            serde_json::to_value(deployment(&website, &config_map)).unwrap(),
        ];
        let kinds = [
            "v1/ConfigMap",
            "v1/Service",
            "networking.k8s.io/v1/Ingress",
            "apps/v1/Deployment",
        ];
        for (child, kind) in children.iter().zip(kinds) {
            assert_eq!(
                format!(
                    "{}/{}",
                    child["apiVersion"].as_str().unwrap(),
                    child["kind"].as_str().unwrap()
                ),
                kind
            );
            let metadata = &child["metadata"];
            assert_eq!(metadata["name"], "homepage-b2ef29");
            assert_eq!(metadata["namespace"], "project-foo");
            assert_eq!(metadata["labels"]["team"], "a");
            assert_eq!(metadata["labels"]["server"], "homepage-b2ef29");
            assert_eq!(
                metadata["ownerReferences"],
                json!([{
                    "apiVersion": "webhosting.timebertt.dev/v1alpha1",
                    "kind": "Website",
                    "name": "homepage",
                    "uid": UID,
                    "controller": true,
                    "blockOwnerDeletion": true,
                }]),
                "{kind}"
            );
        }
    }

    #[test]
    fn the_pods_are_selected_without_the_shard_label() {
        let website = website(&[(
            "shard.alpha.sharding.timebertt.dev/webhosting-operator",
            "shard-0",
        )]);
        let config_map = config_map(&website, &theme("teal", "Arial"));
        let deployment = deployment(&website, &config_map);
        let spec = deployment.spec.unwrap();
        let selector = spec.selector.match_labels.unwrap();
        assert_eq!(selector, server_labels(&website, "homepage-b2ef29"));
        assert_eq!(spec.template.metadata.unwrap().labels.unwrap(), selector);
        assert_eq!(service(&website).spec.unwrap().selector.unwrap(), selector);
    }

    #[test]
    fn the_service_exposes_http_on_8080() {
        let spec = service(&website(&[])).spec.unwrap();
        assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
        let port = &spec.ports.unwrap()[0];
        assert_eq!(port.name.as_deref(), Some("http"));
        assert_eq!(port.port, 8080);
        assert_eq!(port.target_port, Some(IntOrString::String("http".into())));
    }

    #[test]
    fn the_ingress_routes_the_website_path_to_the_service() {
        let spec = ingress(&website(&[])).spec.unwrap();
        assert_eq!(spec.ingress_class_name, None);
        let rule = &spec.rules.unwrap()[0];
        assert_eq!(rule.host, None);
        let path = &rule.http.as_ref().unwrap().paths[0];
        assert_eq!(path.path.as_deref(), Some("/project-foo/homepage"));
        assert_eq!(path.path_type, "Prefix");
        let backend = path.backend.service.as_ref().unwrap();
        assert_eq!(backend.name, "homepage-b2ef29");
        assert_eq!(backend.port.as_ref().unwrap().name.as_deref(), Some("http"));
    }

    #[test]
    fn skip_workload_means_no_replicas_and_a_fake_ingress_class() {
        let theme = theme("teal", "Arial");
        for (labels, replicas, class) in [
            (&[][..], 1, None),
            (&[("skip-workload", "")][..], 0, Some("fake")),
            (&[("skip-workload", "true")][..], 0, Some("fake")),
        ] {
            let website = website(labels);
            let config_map = config_map(&website, &theme);
            let spec = deployment(&website, &config_map).spec.unwrap();
            assert_eq!(spec.replicas, Some(replicas), "{labels:?}");
            assert_eq!(spec.revision_history_limit, Some(2));
            let ingress = ingress(&website).spec.unwrap();
            assert_eq!(ingress.ingress_class_name.as_deref(), class, "{labels:?}");
        }
    }

    #[test]
    fn the_deployment_serves_the_config_map_with_nginx() {
        let website = website(&[]);
        let config_map = config_map(&website, &theme("teal", "Arial"));
        let pod = deployment(&website, &config_map)
            .spec
            .unwrap()
            .template
            .spec
            .unwrap();
        let container = &pod.containers[0];
        assert_eq!(container.image.as_deref(), Some("nginx:1.29-alpine"));
        assert_eq!(
            container.ports.as_ref().unwrap()[0].name.as_deref(),
            Some("http")
        );
        let volumes = pod.volumes.unwrap();
        for (volume, key) in volumes.iter().zip(["index.html", "nginx.conf"]) {
            let source = volume.config_map.as_ref().unwrap();
            assert_eq!(source.name, "homepage-b2ef29");
            assert_eq!(source.items.as_ref().unwrap()[0].key, key);
            assert!(config_map.data.as_ref().unwrap().contains_key(key));
        }
    }

    fn checksum(website: &Website, theme: &Theme) -> String {
        let config_map = config_map(website, theme);
        let template = deployment(website, &config_map).spec.unwrap().template;
        template.metadata.unwrap().annotations.unwrap()["checksum/configmap"].clone()
    }

    #[test]
    fn the_checksum_equals_the_originals() {
        // From the original's templates and checksum, run in Go for this Website and Theme.
        assert_eq!(
            checksum(&website(&[]), &theme("teal", "Trebuchet MS")),
            "82833729a5c4b7c01d14f4203baf0ce34621d34246be787107ccaa2efcd41619"
        );
    }

    #[test]
    fn the_checksum_follows_the_theme_only() {
        let plain = website(&[]);
        let teal = checksum(&plain, &theme("teal", "Arial"));
        assert_eq!(teal, checksum(&plain, &theme("teal", "Arial")));
        assert_ne!(teal, checksum(&plain, &theme("navy", "Arial")));
        assert_ne!(teal, checksum(&plain, &theme("teal", "Georgia")));
        let labelled = website(&[("team", "a")]);
        assert_eq!(teal, checksum(&labelled, &theme("teal", "Arial")));
    }

    #[test]
    fn the_page_and_config_are_rendered_for_the_website() {
        let website = website(&[]);
        let data = config_map(&website, &theme("teal", "Trebuchet MS"))
            .data
            .unwrap();
        let index = &data["index.html"];
        for needle in [
            "<title>homepage</title>",
            "background-color: teal;",
            "font-family: Trebuchet MS, Arial, sans-serif;",
            "<h1>Welcome to homepage</h1>",
            "<p>Server name: homepage-b2ef29</p>",
        ] {
            assert!(index.contains(needle), "missing {needle:?} in\n{index}");
        }
        assert!(!index.contains("{{"));
        assert!(data["nginx.conf"].contains("rewrite ^/project-foo/homepage(.*)$ /$1 last;"));
    }

    #[test]
    fn theme_values_are_filtered_like_html_template() {
        // Expected values are what Go's html/template renders for each input.
        for (value, rendered) in [
            ("#2D2D2D", "#2D2D2D"),
            ("Courier New", "Courier New"),
            ("Ünïcode font", "Ünïcode font"),
            ("red;}", "ZgotmplZ"),
            ("expression(1)", "ZgotmplZ"),
            ("Moz-Binding", "ZgotmplZ"),
            ("a--b", "ZgotmplZ"),
            (r#"a\"b"#, "ZgotmplZ"),
            (r"a\\b", "ZgotmplZ"),
            (r"\0", "ZgotmplZ"),
            (r"x\72", "xr"),
            (r"\41 B", "AB"),
            (r"a\", "a"),
            (r"\110000", "\u{11000}0"),
            (r"\D800x", "\u{FFFD}x"),
        ] {
            assert_eq!(css_value(value), rendered, "{value:?}");
        }
    }

    #[test]
    fn names_are_escaped_like_html_template() {
        assert_eq!(
            escape_html("a<b>&'\"+\0"),
            "a&lt;b&gt;&amp;&#39;&#34;&#43;\u{FFFD}"
        );
    }
}
