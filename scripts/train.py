from cyclegan_tf.cli.train import main

raise SystemExit(main())
