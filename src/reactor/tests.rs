//! Tests of the reactor that need its insides: how often it reads the
//! clock, and what a connection costs in its tables.

mod clock_tests {
    use std::io::Write;
    use std::time::Duration;

    use crate::{CloseReason, Config, Conn, Handler, Reactor};

    struct Nop;
    impl Handler for Nop {
        fn on_data(&mut self, _: &mut Conn<'_>, _: &[u8]) {}
        fn on_close(&mut self, _: CloseReason) {}
    }

    /// Clock reads while 20 peers send a byte and reset.
    fn clock_reads_for_closes(config: Config) -> u64 {
        let mut r = Reactor::<Nop>::with_config(config).unwrap();
        let addr = r.listen("127.0.0.1:0".parse().unwrap(), |_| Nop).unwrap();
        let peers: Vec<_> = (0..20)
            .map(|_| std::net::TcpStream::connect(addr).unwrap())
            .collect();
        while r.connection_count() < 20 {
            r.run_once(Some(Duration::from_millis(5))).unwrap();
        }
        let before = r.env.clock.reads.get();
        for mut p in peers {
            p.write_all(b"x").unwrap();
            socket2::SockRef::from(&p)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
        }
        while r.connection_count() > 0 {
            r.run_once(None).unwrap();
        }
        r.env.clock.reads.get() - before
    }

    #[test]
    fn with_latency_off_no_clock_is_read_on_the_close_path() {
        assert_eq!(clock_reads_for_closes(Config::default()), 0);
        let on = clock_reads_for_closes(Config::default().close_latency(true));
        assert!(on >= 20, "latency on reads the clock at each close: {on}");
    }
}

mod size_tests {
    /// What an idle connection costs in the reactor's tables, for an 8-byte
    /// handler (BENCHMARKS.md, footprint): its core in the slab plus its
    /// handler slot. A regression here shows up in RSS.
    #[test]
    fn per_connection_bytes_for_8_byte_handler_are_small() {
        struct H8(#[allow(dead_code)] u64);
        impl crate::Handler for H8 {
            fn on_data(&mut self, _: &mut crate::Conn<'_>, _: &[u8]) {}
            fn on_close(&mut self, _: crate::CloseReason) {}
        }
        /// The shape of `slab::Entry<Core>`.
        #[allow(dead_code)]
        enum SlabEntry<T> {
            Vacant(usize),
            Occupied(T),
        }
        let core = std::mem::size_of::<SlabEntry<crate::conn::Core>>();
        let handler = std::mem::size_of::<Option<H8>>();
        let generation = std::mem::size_of::<u32>();
        let size = core + handler;
        println!(
            "per connection: core {core} B + handler {handler} B (+ {generation} B generation)"
        );
        assert!(
            size <= 104,
            "core {core} + handler {handler} = {size} bytes"
        );
    }
}
