use super::*;

fn opts(network: NetworkMode) -> CreateOptions {
    CreateOptions {
        network,
        ..Default::default()
    }
}

#[test]
fn bridge_is_the_default_network_of_bridge_mode() {
    let p = plan(None, &opts(NetworkMode::Bridge)).unwrap();
    assert_eq!(p.networks, ["bridge"]);
    let mut o = opts(NetworkMode::Bridge);
    o.networks = vec!["mynet".into()];
    assert_eq!(plan(None, &o).unwrap().networks, ["mynet"]);
    assert!(plan(None, &opts(NetworkMode::None))
        .unwrap()
        .networks
        .is_empty());
}

#[test]
fn ports_from_flags_and_the_image() {
    let image: ImageConfig = serde_json::from_value(serde_json::json!({
        "ExposedPorts": {"80/tcp": {}, "53/udp": {}}
    }))
    .unwrap();
    let mut o = opts(NetworkMode::Bridge);
    o.publish = vec!["127.0.0.1:8080:80".into()];
    o.publish_all = true;
    let p = plan(Some(&image), &o).unwrap();
    assert_eq!(p.ports.len(), 2, "80/tcp is published once: {:?}", p.ports);
    assert_eq!(p.ports[0].host_port, Some(8080));
    assert!(p
        .ports
        .iter()
        .any(|s| s.container_port == 53 && s.host_port.is_none()));
}

#[test]
fn bad_network_options_name_the_flag() {
    let mut o = opts(NetworkMode::Bridge);
    o.publish = vec!["80:80/sctp".into()];
    let e = plan(None, &o).unwrap_err().to_string();
    assert!(e.contains("-p") && e.contains("sctp"), "{e}");
    let mut o = opts(NetworkMode::Host);
    o.publish = vec!["80".into()];
    let e = plan(None, &o).unwrap_err().to_string();
    assert!(e.contains("bridge network"), "{e}");
    let e = plan(None, &opts(NetworkMode::Container))
        .unwrap_err()
        .to_string();
    assert!(e.contains("container:"), "{e}");
}

#[test]
fn mode_names_as_docker() {
    let mut c = ContainerConfig::default();
    assert_eq!(mode_name(&c), "none");
    c.network = NetworkMode::Bridge;
    c.networks = vec!["front".into()];
    assert_eq!(mode_name(&c), "front");
    c.network = NetworkMode::Container;
    c.network_container = Some("abc".into());
    assert_eq!(mode_name(&c), "container:abc");
}
