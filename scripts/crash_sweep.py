from cyclegan_tf.cli.crash_sweep import main

raise SystemExit(main())
