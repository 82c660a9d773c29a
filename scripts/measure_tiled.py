from cyclegan_tf.cli.measure_tiled import main

raise SystemExit(main())
