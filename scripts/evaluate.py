from cyclegan_tf.cli.evaluate import main

raise SystemExit(main())
