from cyclegan_tf.cli.demo import main

raise SystemExit(main())
