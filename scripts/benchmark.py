from cyclegan_tf.cli.benchmark import main

raise SystemExit(main())
